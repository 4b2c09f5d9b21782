//! The CX correction to VADER: a small lexicon of what customers say about service that a
//! general-purpose lexicon scores as neutral or even positive ("waited forty minutes on
//! hold", "the third time", "still not fixed", "transferred four times", "thanks for
//! nothing"), and the good counterparts ("no wait", "fixed on the first call").
//!
//! How `cx_compound` is made (docs/feedback.md states the same):
//! 1. VADER's compound is turned back into its raw valence sum, `s = c·√(15 / (1 − c²))`
//!    (the inverse of VADER's normalisation with α = 15).
//! 2. Every lexicon phrase found in the text adds its valence. Phrases match whole words,
//!    longest first, without overlapping. A phrase with a negator (`not`, `never`, `no`,
//!    `without`, any `n't` word) in the three words before it is flipped and damped by
//!    VADER's own factor (−0.74). A phrase before a `but` counts half and one after it
//!    counts 1.5 times, as VADER weighs its own words.
//! 3. A stated wait (a number and a unit of time after `waited`, `for`, `been`, `took`, …)
//!    adds −1.2; a quick one (`within`, `in`, `under` … minutes or an hour) adds +1.0.
//! 4. The sum is normalised back with VADER's formula and rounded to four places.
//!
//! The phrases are English, lower case, and describe the service, not the product's
//! domain: they apply to any business. Valences use VADER's scale (−4 … +4).

/// (phrase, valence). Phrases are whole lower-case words separated by single spaces.
pub(crate) const LEXICON: &[(&str, f64)] = &[
    // waiting and queues
    ("on hold", -2.0),
    ("put on hold", -2.2),
    ("hold music", -1.8),
    ("in a queue", -1.5),
    ("in the queue", -1.2),
    ("waited", -1.3),
    ("waiting", -1.3),
    ("still waiting", -2.5),
    ("kept waiting", -2.5),
    ("keep waiting", -2.0),
    ("wait another", -2.0),
    ("waiting for a reply", -2.2),
    ("took forever", -2.5),
    ("takes forever", -2.5),
    ("taking forever", -2.5),
    ("ages", -1.0),
    ("no wait", 2.0),
    ("no waiting", 2.0),
    ("no queue", 1.8),
    ("didn't have to wait", 2.2),
    ("did not have to wait", 2.2),
    ("without waiting", 1.8),
    ("without any wait", 2.0),
    ("barely waited", 1.8),
    ("hardly waited", 1.8),
    // repeat contact and effort
    ("again", -0.8),
    ("again and again", -2.5),
    ("happened again", -2.0),
    ("down again", -2.2),
    ("broken again", -2.5),
    ("second time", -1.5),
    ("third time", -2.2),
    ("fourth time", -2.5),
    ("fifth time", -2.5),
    ("three times", -1.5),
    ("four times", -1.8),
    ("five times", -2.0),
    ("several times", -1.5),
    ("multiple times", -1.5),
    ("many times", -1.5),
    ("every time", -0.6),
    ("keeps happening", -2.2),
    ("keeps coming back", -2.2),
    ("keeps crashing", -2.5),
    ("keep having to", -2.2),
    ("have to keep", -2.0),
    ("had to call", -1.2),
    ("had to chase", -2.2),
    ("chase", -1.5),
    ("chasing", -1.8),
    ("repeat myself", -2.0),
    ("repeating myself", -2.2),
    ("explain again", -2.0),
    ("explained again", -2.0),
    ("explain it again", -2.0),
    ("start over", -1.2),
    ("starting over", -1.2),
    ("so many steps", -1.8),
    ("jump through hoops", -2.2),
    ("didn't have to repeat", 2.2),
    ("didn't need to explain", 2.2),
    ("only had to explain", 2.0),
    ("first call", 1.5),
    ("first contact", 1.2),
    ("first try", 1.2),
    ("one call", 1.0),
    ("in one go", 1.2),
    // transfers and being passed around
    ("transferred", -1.5),
    ("passed around", -2.2),
    ("passed from", -2.0),
    ("passed between", -2.0),
    ("bounced between", -2.2),
    ("bounced around", -2.2),
    ("pushed back and forth", -2.2),
    ("back and forth", -1.2),
    ("runaround", -2.2),
    ("run around", -2.0),
    ("another department", -1.2),
    // no answer, broken promises
    ("no reply", -2.0),
    ("no response", -2.0),
    ("no answer", -1.8),
    ("no update", -1.8),
    ("no updates", -1.8),
    ("no one", -1.0),
    ("nobody", -1.2),
    ("never heard back", -2.5),
    ("never got back", -2.5),
    ("never called back", -2.5),
    ("never came", -2.0),
    ("never arrived", -2.2),
    ("never received", -2.2),
    ("never got", -1.8),
    ("never replied", -2.5),
    ("ignored", -2.0),
    ("ghosted", -2.5),
    ("you promised", -1.8),
    ("was promised", -1.8),
    ("were promised", -1.8),
    ("promised a", -1.2),
    ("promised to", -1.2),
    ("as promised", 1.8),
    ("called back", 1.2),
    ("got back to me", 1.2),
    // unresolved
    ("still not", -2.0),
    ("still no", -2.0),
    ("still don't", -2.0),
    ("still doesn't", -2.2),
    ("still isn't", -2.2),
    ("still can't", -2.2),
    ("still broken", -2.5),
    ("still down", -2.5),
    ("still being", -1.5),
    ("still have", -1.0),
    ("still showing", -1.5),
    ("still charging", -2.2),
    ("not fixed", -2.2),
    ("isn't fixed", -2.2),
    ("never fixed", -2.5),
    ("not resolved", -2.2),
    ("unresolved", -2.2),
    ("without fixing", -2.2),
    ("without a fix", -2.2),
    ("without anyone", -1.8),
    ("closed my ticket", -1.8),
    ("closed the ticket", -1.5),
    ("marked as resolved", -1.2),
    ("same help article", -1.8),
    ("canned response", -2.0),
    ("copy paste", -1.5),
    ("fixed", 1.5),
    ("resolved", 1.3),
    ("sorted it", 1.5),
    ("sorted out", 1.2),
    ("solved", 1.5),
    ("saved me", 2.0),
    ("saves me", 2.0),
    ("saved us", 2.0),
    ("saves us", 2.0),
    ("right away", 1.5),
    ("straight away", 1.5),
    ("within minutes", 1.8),
    ("in minutes", 1.5),
    ("within the hour", 1.5),
    ("same day", 1.2),
    ("quickly", 1.2),
    ("quick", 1.0),
    ("fast", 1.0),
    ("just works", 2.0),
    ("works perfectly", 2.2),
    ("works great", 2.2),
    ("out of the box", 1.2),
    // things that are broken
    ("doesn't work", -2.2),
    ("does not work", -2.2),
    ("didn't work", -2.0),
    ("not working", -2.2),
    ("stopped working", -2.5),
    ("won't load", -2.2),
    ("doesn't load", -2.2),
    ("barely load", -2.2),
    ("barely loads", -2.2),
    ("crashes", -2.2),
    ("crashed", -2.0),
    ("crashing", -2.2),
    ("freezes", -2.0),
    ("frozen", -1.5),
    ("keeps freezing", -2.5),
    ("logged me out", -1.8),
    ("logged out", -1.2),
    ("locked out", -2.0),
    ("outage", -1.8),
    ("outages", -1.8),
    ("downtime", -1.8),
    ("went down", -2.0),
    ("is down", -2.0),
    ("was down", -1.8),
    ("slow", -1.5),
    ("slower", -1.5),
    ("sluggish", -1.8),
    ("laggy", -1.8),
    ("lag", -1.2),
    ("times out", -1.8),
    ("timed out", -1.8),
    ("error", -1.2),
    ("errors", -1.2),
    ("bug", -1.2),
    ("buggy", -2.0),
    ("glitch", -1.5),
    ("glitchy", -1.8),
    ("fails", -1.8),
    ("failed", -1.5),
    ("missing", -1.2),
    ("lost", -1.5),
    ("disconnected", -1.8),
    ("call dropped", -2.2),
    ("dropped the call", -2.2),
    ("made it worse", -2.5),
    // money
    ("charged twice", -2.5),
    ("double charged", -2.5),
    ("double charge", -2.5),
    ("overcharged", -2.5),
    ("overcharging", -2.5),
    ("hidden fee", -2.2),
    ("hidden fees", -2.2),
    ("no warning", -1.8),
    ("without warning", -1.8),
    ("price went up", -1.8),
    ("prices went up", -1.8),
    ("price increase", -1.5),
    ("price hike", -2.0),
    ("still being billed", -2.5),
    ("still billed", -2.2),
    ("billed for", -1.0),
    ("no refund", -2.2),
    ("refunded", 1.5),
    ("got my money back", 1.8),
    // words VADER scores as praise that are only names or politeness in a service message:
    // "support" is a team ("contacted support"), "please" and "I'd like" make a request
    ("support", -1.7),
    ("please", -1.0),
    ("i'd like", -1.5),
    ("would like", -1.5),
    ("crash", -1.8),
    ("for days", -1.5),
    ("for weeks", -1.8),
    ("for months", -1.8),
    ("it isn't", -1.2),
    ("nothing has changed", -2.0),
    ("nothing changed", -1.5),
    ("hung up", -2.0),
    ("hangs up", -2.0),
    ("unusable", -2.5),
    ("flaky", -1.8),
    ("spins forever", -2.2),
    ("loops me back", -2.0),
    ("automated reply", -1.0),
    ("right on time", 1.8),
    ("on time", 1.2),
    ("instantly", 1.2),
    ("smooth", 1.5),
    ("knowledgeable", 1.5),
    ("game changer", 2.5),
    // sarcasm that reads as praise
    ("thanks for nothing", -4.0),
    ("thank you for nothing", -4.0),
    ("great another", -3.0),
    ("oh great", -2.5),
    ("oh brilliant", -2.5),
    ("oh wonderful", -2.5),
    ("oh perfect", -2.5),
    ("just what i needed", -2.2),
    ("so much for", -2.2),
    ("yeah right", -2.5),
    ("what a joke", -3.0),
    ("is a joke", -2.5),
    ("a joke", -2.0),
    ("like that's ever helped", -2.5),
    ("no problem at all", -0.5),
];

/// Words that flip a phrase within the three words before it, as VADER's negations do.
const NEGATORS: &[&str] = &[
    "not", "no", "never", "without", "nothing", "neither", "nor", "less", "cannot", "dont",
    "didnt", "doesnt", "isnt", "wasnt", "wont", "cant", "hasnt", "havent", "hadnt", "couldnt",
    "wouldnt", "shouldnt", "arent", "werent",
];

/// Phrases about how often something happens: "can't log in again" is no less a repeat.
const NOT_NEGATED: &[&str] = &["again", "every time", "support", "please"];

/// VADER's negation factor.
const NEGATION: f64 = -0.74;
/// VADER's normalisation constant.
const ALPHA: f64 = 15.0;

const TIME_UNITS: &[(&str, f64)] = &[
    ("minute", 1.0),
    ("minutes", 1.0),
    ("mins", 1.0),
    ("min", 1.0),
    ("hour", 60.0),
    ("hours", 60.0),
    ("hrs", 60.0),
    ("day", 1440.0),
    ("days", 1440.0),
    ("week", 10_080.0),
    ("weeks", 10_080.0),
    ("month", 43_200.0),
    ("months", 43_200.0),
];
const NUMBER_WORDS: &[(&str, f64)] = &[
    ("a", 1.0),
    ("an", 1.0),
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("fifteen", 15.0),
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("forty", 40.0),
    ("fifty", 50.0),
    ("sixty", 60.0),
    ("ninety", 90.0),
    ("few", 3.0),
    ("couple", 2.0),
    ("several", 4.0),
    ("many", 6.0),
];
const SLOW_BEFORE: &[&str] = &[
    "waited", "waiting", "wait", "for", "been", "took", "taken", "takes", "after", "over", "spent",
    "another", "nearly", "almost",
];
const QUICK_BEFORE: &[&str] = &["within", "in", "under", "only", "just"];

/// A text as lower-case words (curly apostrophes made straight, so "didn’t" matches).
struct Words {
    /// Lower-case words as they appear, apostrophes kept (straight).
    words: Vec<String>,
    /// `words` joined by single spaces, for phrase matching.
    joined: String,
    /// Byte offset of each word in `joined`.
    starts: Vec<usize>,
}

impl Words {
    fn new(text: &str) -> Words {
        let words: Vec<String> = text
            .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
            .map(|w| w.trim_matches(|c| c == '\'' || c == '’'))
            .filter(|w| !w.is_empty())
            .map(|w| w.to_lowercase().replace('’', "'"))
            .collect();
        let mut joined = String::new();
        let mut starts = Vec::with_capacity(words.len());
        for w in &words {
            if !joined.is_empty() {
                joined.push(' ');
            }
            starts.push(joined.len());
            joined.push_str(w);
        }
        Words {
            words,
            joined,
            starts,
        }
    }
}

fn is_negator(word: &str) -> bool {
    word.ends_with("n't") || NEGATORS.contains(&word.replace('\'', "").as_str())
}

/// "40 minutes", "two weeks", "an hour" as minutes.
fn duration_minutes(number: &str, unit: &str) -> Option<f64> {
    let n: f64 = match number.parse::<f64>() {
        Ok(n) => n,
        Err(_) => NUMBER_WORDS.iter().find(|(w, _)| *w == number)?.1,
    };
    let per = TIME_UNITS.iter().find(|(u, _)| *u == unit)?.1;
    Some(n * per)
}

/// The phrases, in one automaton (leftmost-longest, so "still not fixed" reads as "still
/// not" then "fixed" is skipped only when a longer phrase covers it).
pub(crate) struct CxLexicon {
    automaton: aho_corasick::AhoCorasick,
}

/// A phrase the text matched, for the reader to check.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CxHit {
    pub phrase: &'static str,
    /// What it added to the raw sum, after negation and `but`.
    pub valence: f64,
}

impl CxLexicon {
    pub(crate) fn new() -> CxLexicon {
        let automaton = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(LEXICON.iter().map(|(p, _)| p))
            .expect("cx lexicon compiles");
        CxLexicon { automaton }
    }

    /// The phrases found and their contributions to the raw valence sum.
    pub(crate) fn hits(&self, text: &str) -> Vec<CxHit> {
        let w = Words::new(text);
        let but = w.words.iter().position(|x| x == "but");
        let weigh = |at: usize, v: f64| match but {
            Some(b) if at < b => v * 0.5,
            Some(b) if at > b => v * 1.5,
            _ => v,
        };
        let mut hits = vec![];
        for m in self.automaton.find_iter(&w.joined) {
            let (s, e) = (m.start(), m.end());
            // whole words only: the match must start and end at word boundaries
            let at = match w.starts.binary_search(&s) {
                Ok(i) => i,
                Err(_) => continue,
            };
            if e < w.joined.len() && w.joined.as_bytes()[e] != b' ' {
                continue;
            }
            let (phrase, valence) = LEXICON[m.pattern().as_usize()];
            let negated = !is_negator(phrase.split(' ').next().unwrap_or(""))
                && !NOT_NEGATED.contains(&phrase)
                && w.words[at.saturating_sub(3)..at]
                    .iter()
                    .any(|x| is_negator(x));
            let v = if negated { valence * NEGATION } else { valence };
            hits.push(CxHit {
                phrase,
                valence: weigh(at, v),
            });
        }
        // stated waits: "waited 40 minutes", "for two weeks"; quick ones: "within the
        // hour", "took two minutes"
        for i in 1..w.words.len() {
            let Some(minutes) = duration_minutes(&w.words[i - 1], &w.words[i]) else {
                continue;
            };
            let before = &w.words[i.saturating_sub(4)..i - 1];
            let said = |list: &[&str]| before.iter().any(|x| list.contains(&x.as_str()));
            let quick =
                (said(QUICK_BEFORE) && minutes <= 60.0) || (said(&["took"]) && minutes <= 5.0);
            let valence = if quick {
                Some(("quick reply", 1.0))
            } else if said(SLOW_BEFORE) && minutes >= 15.0 {
                Some(("stated wait", -1.2))
            } else {
                None
            };
            if let Some((phrase, v)) = valence {
                hits.push(CxHit {
                    phrase,
                    valence: weigh(i, v),
                });
            }
        }
        hits
    }
}

/// VADER's raw valence sum behind a compound score (the inverse of its normalisation).
fn raw_sum(compound: f64) -> f64 {
    let c = compound.clamp(-0.9999, 0.9999);
    c * (ALPHA / (1.0 - c * c)).sqrt()
}

/// The compound with the CX phrases added, on VADER's scale.
pub(crate) fn cx_compound(compound: f64, hits: &[CxHit]) -> f64 {
    if hits.is_empty() {
        return compound;
    }
    let s = raw_sum(compound) + hits.iter().map(|h| h.valence).sum::<f64>();
    let c = (s / (s * s + ALPHA).sqrt()).clamp(-1.0, 1.0);
    (c * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_sum_inverts_vaders_normalisation() {
        for s in [-6.0, -1.5, 0.0, 0.4, 2.2, 9.0] {
            let c = s / (s * s + ALPHA).sqrt();
            assert!((raw_sum(c) - s).abs() < 1e-9, "{s}");
        }
    }

    #[test]
    fn phrases_are_whole_words_and_valid() {
        let lex = CxLexicon::new();
        for (p, v) in LEXICON {
            assert_eq!(*p, p.trim().to_lowercase(), "{p}: lower case, trimmed");
            assert!(!p.contains("  ") && (-4.0..=4.0).contains(v), "{p}");
        }
        // "slowly" is not "slow", "holder" is not "hold"
        assert!(lex.hits("the placeholder loads slowly").is_empty());
        let hits = lex.hits("I was NOT transferred");
        assert_eq!(hits[0].phrase, "transferred");
        assert!(hits[0].valence > 0.0, "negated: {hits:?}");
    }

    #[test]
    fn but_weighs_the_clause_after_it() {
        let lex = CxLexicon::new();
        let hits = lex.hits("it was fixed but then it crashed");
        assert_eq!(hits[0].valence, 1.5 * 0.5);
        assert_eq!(hits[1].valence, -2.0 * 1.5);
    }

    #[test]
    fn the_labelled_sets_parse_whole() {
        for (name, set) in CX_SETS {
            let rows = labelled(set);
            let lines = set.lines().filter(|l| !l.starts_with('#')).count();
            assert_eq!(rows.len(), lines, "{name}: every line is label<TAB>text");
            assert!(rows.iter().all(|(l, _)| (-1..=1).contains(l)), "{name}");
            assert!(rows.len() >= 160, "{name}: {}", rows.len());
        }
    }

    #[test]
    fn stated_waits() {
        let lex = CxLexicon::new();
        let slow = lex.hits("I waited 40 minutes");
        assert!(slow.iter().any(|h| h.phrase == "stated wait"), "{slow:?}");
        let short = lex.hits("it took two minutes");
        assert!(short.iter().any(|h| h.phrase == "quick reply"), "{short:?}");
        let long = lex.hits("it takes almost a minute");
        assert!(long.iter().all(|h| h.phrase != "quick reply"), "{long:?}");
        let quick = lex.hits("answered within 5 minutes");
        assert!(quick.iter().any(|h| h.phrase == "quick reply"), "{quick:?}");
    }
}

/// The CX sentences we labelled (rule in each file's header): a development set the lexicon
/// was written against, and a held-out set from other industries scored only once it was
/// frozen. `cxm eval sentiment` reports both scores on both.
pub const CX_SETS: &[(&str, &str)] = &[
    ("cx_dev", include_str!("../data/cx_sentences.tsv")),
    (
        "cx_heldout",
        include_str!("../data/cx_sentences_heldout.tsv"),
    ),
];

/// `label<TAB>text` lines, `#` comments skipped.
pub fn labelled(set: &str) -> Vec<(i8, &str)> {
    set.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (label, text) = l.split_once('\t')?;
            Some((label.trim().parse().ok()?, text))
        })
        .collect()
}

#[cfg(test)]
mod measured {
    use crate::metrics::{vader_class, weighted_prf};

    fn f1(set: &str) -> (f64, f64) {
        let a = crate::Analyzer::new();
        let rows = super::labelled(set);
        let truth: Vec<i8> = rows.iter().map(|(l, _)| *l).collect();
        let (mut v, mut x) = (vec![], vec![]);
        for (_, t) in &rows {
            let (c, cx, _) = a.cx(t);
            v.push(vader_class(c));
            x.push(vader_class(cx));
        }
        (weighted_prf(&truth, &v).2, weighted_prf(&truth, &x).2)
    }

    /// Measured when the lexicon was frozen: dev 0.468 → 0.808, held-out 0.546 → 0.751
    /// (weighted F1, three classes). The floors leave a little room for lexicon edits; an
    /// edit that loses the gain fails here.
    #[test]
    fn cx_compound_beats_vader_on_cx_text() {
        let (vader, cx) = f1(super::CX_SETS[0].1);
        assert!(
            cx >= 0.78 && cx > vader + 0.25,
            "dev: vader {vader:.3}, cx {cx:.3}"
        );
        let (vader, cx) = f1(super::CX_SETS[1].1);
        assert!(
            cx >= 0.72 && cx > vader + 0.15,
            "held-out: vader {vader:.3}, cx {cx:.3}"
        );
    }

    #[test]
    fn the_complaints_the_dashboard_got_wrong() {
        let a = crate::Analyzer::new();
        for t in [
            "Waited forty minutes on hold for support",
            "This is the third time I'm asking and it's still not fixed",
            "I was transferred four times and nobody could help me.",
            "Thanks for nothing.",
        ] {
            let (vader, cx, hits) = a.cx(t);
            assert!(cx <= -0.05, "{t}: vader {vader}, cx {cx}, {hits:?}");
        }
        let (_, cx, _) = a.cx("No wait at all, fixed on the first call.");
        assert!(cx >= 0.05, "{cx}");
    }
}

#[cfg(test)]
mod dev {
    /// `cargo test -p cxm-analytics dev_set_errors -- --ignored --nocapture` lists what the
    /// development set still gets wrong (never the held-out set: it stays unread).
    #[test]
    #[ignore]
    fn dev_set_errors() {
        let a = crate::Analyzer::new();
        let class = crate::metrics::vader_class;
        let rows = super::labelled(super::CX_SETS[0].1);
        let mut right = 0;
        for (l, t) in &rows {
            let (c, x, hits) = a.cx(t);
            if class(x) == *l {
                right += 1;
            } else {
                let h: Vec<String> = hits
                    .iter()
                    .map(|h| format!("{}{:+.2}", h.phrase, h.valence))
                    .collect();
                println!("{l:+} vader {c:+.3} cx {x:+.3} | {t} | {}", h.join(", "));
            }
        }
        println!("accuracy {:.3}", right as f64 / rows.len() as f64);
    }
}
