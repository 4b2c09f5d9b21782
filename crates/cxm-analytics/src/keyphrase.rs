//! Theme labels people can read: the key phrase of each class of texts, by class-based
//! TF-IDF over 1–3-word phrases, the way BERTopic labels its topics.
//!
//! For phrase `t` and class `c`: `W(t, c) = tf(t, c) / words(c) · ln(1 + A / f(t))`, where
//! `tf` counts `t` in the class's texts, `words(c)` is the class's word count, `f(t)` counts
//! `t` across every text (clustered or not) and `A` is the average number of words per class.
//! Each distinct text counts once (the same answer pasted twice is one voice). A phrase must
//! occur in at least two distinct texts of the class, may not cross punctuation, and may not
//! start or end with a function word. When the clustering says which words define the class
//! (its centre's top terms, heaviest first), the phrase must contain the first of them that
//! any shared phrase holds: a word the class merely happens to repeat ("usually") does not
//! name it. The label is the heaviest such phrase, or
//! a longer one that contains it and weighs at least half as much ("charged twice" over
//! "charged").

use std::collections::HashMap;

/// Function words a phrase may not start or end with ("the invoice" reads as "invoice").
const EDGE_STOPWORDS: &[&str] = &[
    "the", "a", "an", "and", "or", "but", "is", "are", "was", "were", "be", "been", "being", "to",
    "of", "in", "on", "at", "for", "with", "my", "me", "i", "you", "your", "it", "its", "it's",
    "this", "that", "these", "those", "we", "our", "us", "they", "them", "their", "he", "she",
    "do", "does", "did", "have", "has", "had", "not", "no", "so", "can", "could", "would", "will",
    "just", "from", "by", "as", "am", "if", "there", "what", "why", "how", "when", "which", "who",
    "again", "still", "very", "too", "all", "any", "i'm", "i've", "i'd", "we're", "we've", "it",
    "really", "also", "even", "get", "got", "one", "some", "more", "much", "than", "then", "now",
    "out", "up", "about", "into", "over", "every", "since", "after", "before", "ever", "way",
    "thing", "things", "lot", "bit", "quite", "only", "like", "make", "makes", "made", "keep",
    "keeps", "don't", "doesn't", "didn't", "can't", "isn't", "wasn't", "won't", "here", "where",
    "while", "because", "though",
];

const MAX_WORDS: usize = 3;

/// The words of each punctuation-free stretch of a text, lower-cased.
fn segments(text: &str) -> Vec<Vec<String>> {
    text.split(|c: char| ".,;:!?()[]\"“”/\n\t-–—".contains(c))
        .map(|seg| {
            seg.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
                .map(|w| w.trim_matches(|c| c == '\'' || c == '’'))
                .filter(|w| w.chars().count() >= 2)
                .map(|w| w.to_lowercase().replace('’', "'"))
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Every 1–3-word phrase of a text that may label a theme, once per text; and its word count.
fn phrases(text: &str) -> (Vec<String>, usize) {
    let mut out = vec![];
    let mut words = 0;
    for seg in segments(text) {
        words += seg.len();
        for n in 1..=MAX_WORDS {
            for g in seg.windows(n) {
                let edge = |w: &String| EDGE_STOPWORDS.contains(&w.as_str());
                if edge(&g[0])
                    || edge(&g[n - 1])
                    || g.iter().all(|w| w.chars().all(|c| c.is_ascii_digit()))
                {
                    continue;
                }
                out.push(g.join(" "));
            }
        }
    }
    out.sort();
    out.dedup();
    (out, words)
}

/// The key phrase of each class: `class_of[j]` is text `j`'s class (`None` for noise, which
/// still counts in `f(t)`); `anchors[c]`, when given, the words that define class `c`.
/// Classes with no phrase in two of their texts get `None`.
pub fn class_labels(
    texts: &[&str],
    class_of: &[Option<usize>],
    classes: usize,
    anchors: &[Vec<String>],
) -> Vec<Option<String>> {
    let mut per_class: Vec<HashMap<String, u32>> = vec![HashMap::new(); classes];
    let mut words = vec![0usize; classes];
    let mut everywhere: HashMap<String, u32> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for (j, t) in texts.iter().enumerate() {
        if !seen.insert(t.trim().to_lowercase()) {
            continue;
        }
        let (ps, n) = phrases(t);
        let class = class_of.get(j).copied().flatten().filter(|c| *c < classes);
        if let Some(c) = class {
            words[c] += n;
        }
        for p in ps {
            if let Some(c) = class {
                *per_class[c].entry(p.clone()).or_default() += 1;
            }
            *everywhere.entry(p).or_default() += 1;
        }
    }
    let average = words.iter().sum::<usize>() as f64 / classes.max(1) as f64;
    (0..classes)
        .map(|c| {
            let size = words[c].max(1) as f64;
            // the class's defining words in order: the first that some shared phrase holds
            // is the one the label is about
            let anchor = anchors.get(c).and_then(|a| {
                a.iter().find(|w| {
                    per_class[c]
                        .iter()
                        .any(|(p, n)| *n >= 2 && p.split(' ').any(|x| x == w.as_str()))
                })
            });
            let mut scored: Vec<(&str, f64)> = per_class[c]
                .iter()
                .filter(|(p, n)| {
                    **n >= 2 && anchor.is_none_or(|w| p.split(' ').any(|x| x == w.as_str()))
                })
                .map(|(p, n)| {
                    let f = f64::from(everywhere[p]);
                    (p.as_str(), f64::from(*n) / size * (1.0 + average / f).ln())
                })
                .collect();
            // heaviest first; ties to the longer phrase, then alphabetically, so labels repeat
            scored.sort_by(|a, b| {
                b.1.total_cmp(&a.1)
                    .then(b.0.len().cmp(&a.0.len()))
                    .then(a.0.cmp(b.0))
            });
            let (best, weight) = *scored.first()?;
            // scored is heaviest first, so the first longer phrase is the heaviest of them
            let longer = scored.iter().find(|(p, w)| {
                *w >= weight * 0.5
                    && p.split(' ').count() > best.split(' ').count()
                    && format!(" {p} ").contains(&format!(" {best} "))
            });
            Some(sentence_case(longer.map_or(best, |l| l.0)))
        })
        .collect()
}

fn sentence_case(p: &str) -> String {
    let mut c = p.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_phrase_a_class_shares_and_others_do_not() {
        let texts = [
            "I was charged twice this month",
            "charged twice for one invoice, again",
            "Why was I charged twice?",
            "the invoice total is wrong",
            "exports fail on large files",
            "CSV exports fail every time",
            "exports fail since the update",
            "the update broke the dashboard",
        ];
        let class = [
            Some(0),
            Some(0),
            Some(0),
            Some(0),
            Some(1),
            Some(1),
            Some(1),
            None,
        ];
        let labels = class_labels(&texts, &class, 2, &[]);
        assert_eq!(labels[0].as_deref(), Some("Charged twice"));
        assert_eq!(labels[1].as_deref(), Some("Exports fail"));
    }

    #[test]
    fn phrases_stop_at_punctuation_and_function_words() {
        let (p, words) = phrases("The invoice, again. Refund please");
        assert_eq!(words, 5);
        assert!(p.contains(&"invoice".to_string()));
        assert!(!p
            .iter()
            .any(|x| x.contains("invoice again") || x.starts_with("the ")));
        assert!(p.contains(&"refund please".to_string()));
    }

    #[test]
    fn a_class_without_a_shared_phrase_has_no_label() {
        let labels = class_labels(&["alpha beta", "gamma delta"], &[Some(0), Some(0)], 2, &[]);
        assert_eq!(labels, vec![None, None]);
        // the same answer twice is one voice, not a shared phrase
        let twice = class_labels(
            &["usually fine", "usually fine"],
            &[Some(0), Some(0)],
            1,
            &[],
        );
        assert_eq!(twice, vec![None]);
    }

    #[test]
    fn the_words_that_define_a_class_anchor_its_label() {
        let texts = [
            "usually slow reports",
            "usually slow exports",
            "scheduled reports fail",
            "scheduled reports late",
        ];
        let class = [Some(0); 4];
        let free = class_labels(&texts, &class, 1, &[]);
        assert_eq!(free[0].as_deref(), Some("Scheduled reports"));
        // "the" forms no phrase, so the next defining word names the class
        let anchors = [vec!["the".to_string(), "slow".to_string()]];
        let anchored = class_labels(&texts, &class, 1, &anchors);
        assert_eq!(anchored[0].as_deref(), Some("Usually slow"));
    }
}
