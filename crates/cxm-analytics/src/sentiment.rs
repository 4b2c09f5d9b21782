//! Sentiment: VADER scores exactly as Python's vaderSentiment 3.3.2 computes them (through
//! `vader-parity`), plus the cues a CX team acts on: churn intent, legal threat, rage and
//! effort. VADER is an English lexicon; text that is clearly in another language is marked
//! `unknown` and left unscored rather than scored wrong.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cues {
    /// Says they will leave, cancel or switch.
    pub churn_intent: bool,
    /// Mentions lawyers, suing, regulators.
    pub legal_threat: bool,
    /// 0..1 from shouting (capitals), exclamation, profanity and negativity.
    pub rage: f64,
    /// Complains about effort: repeating themselves, waiting, being transferred.
    pub effort: bool,
    /// The phrases that triggered the cues, for the reader to check.
    pub matched: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sentiment {
    /// VADER compound in [-1, 1], exactly as vaderSentiment computes it; `None` when the
    /// language is not English.
    pub compound: Option<f64>,
    /// The compound corrected for what customers say about service (waiting, repeat
    /// contact, transfers, unresolved issues, sarcasm): see [`crate::cx_lexicon`]. This is
    /// the score the product stores and shows.
    pub cx_compound: Option<f64>,
    /// The CX phrases that moved `cx_compound`, with what each added.
    pub cx_phrases: Vec<crate::cx_lexicon::CxHit>,
    pub pos: Option<f64>,
    pub neu: Option<f64>,
    pub neg: Option<f64>,
    pub language: Language,
    pub cues: Cues,
}

/// Holds the lexicon; build once and share.
pub struct Analyzer {
    vader: vader_parity::SentimentIntensityAnalyzer,
    phrases: CuePhrases,
    cx: crate::cx_lexicon::CxLexicon,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cue {
    Churn,
    Legal,
    Effort,
}

/// Every cue phrase in one automaton: one pass over the text instead of one per phrase.
struct CuePhrases {
    automaton: aho_corasick::AhoCorasick,
    meaning: Vec<(Cue, &'static str)>,
}

impl CuePhrases {
    fn new() -> CuePhrases {
        let meaning: Vec<(Cue, &'static str)> = CHURN
            .iter()
            .map(|p| (Cue::Churn, *p))
            .chain(LEGAL.iter().map(|p| (Cue::Legal, *p)))
            .chain(EFFORT.iter().map(|p| (Cue::Effort, *p)))
            .collect();
        let automaton = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(meaning.iter().map(|(_, p)| p))
            .expect("cue phrases compile");
        CuePhrases { automaton, meaning }
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

const CHURN: &[&str] = &[
    "cancel my",
    "cancelling",
    "canceling",
    "cancelled my",
    "canceled my",
    "going to cancel",
    "will cancel",
    "want to cancel",
    "switching to",
    "switch to",
    "moving to",
    "move to another",
    "going elsewhere",
    "take my business",
    "close my account",
    "closing my account",
    "not renewing",
    "won't renew",
    "will not renew",
    "unsubscribe",
    "leave you",
    "leaving you",
    "done with you",
    "almost cancelled",
    "almost canceled",
    "your competitor",
    "find another provider",
];
const LEGAL: &[&str] = &[
    "lawyer",
    "attorney",
    "solicitor",
    "sue you",
    "suing",
    "lawsuit",
    "legal action",
    "small claims",
    "court",
    "ombudsman",
    "regulator",
    "consumer protection",
    "trading standards",
    "class action",
    "report you to",
];
const EFFORT: &[&str] = &[
    "again and again",
    "third time",
    "3rd time",
    "fourth time",
    "second time",
    "keep having to",
    "repeat myself",
    "repeating myself",
    "explain again",
    "explained again",
    "still waiting",
    "on hold",
    "transferred",
    "no one answers",
    "nobody answers",
    "several times",
    "multiple times",
    "took forever",
    "so many steps",
    "runaround",
    "run around",
];
const PROFANITY: &[&str] = &[
    "fuck", "shit", "damn", "crap", "bullshit", "wtf", "pissed", "bastard", "hell",
];

const EN_STOP: &[&str] = &[
    "the", "a", "an", "and", "or", "but", "is", "are", "was", "were", "i", "you", "it", "to", "of",
    "in", "on", "for", "my", "me", "this", "that", "with", "not", "no", "so", "be", "have", "has",
    "do", "at", "we", "they", "your", "just",
];
const FOREIGN_STOP: &[&str] = &[
    // es, fr, de, pt, it, nl: words that are not also common English words
    "el", "los", "las", "una", "que", "por", "para", "pero", "muy", "con", "está", "esto", "le",
    "les", "des", "est", "une", "pas", "très", "avec", "pour", "mais", "nous", "vous", "der",
    "die", "das", "und", "nicht", "ist", "ich", "sehr", "mit", "aber", "uma", "não", "com", "mas",
    "muito", "il", "della", "non", "sono", "molto", "het", "een", "niet", "zijn", "maar", "wij",
    "es", "y", "nada", "lo", "del", "se", "su", "al", "como", "más", "sin", "hay", "je", "ne",
    "et", "du", "au", "ce", "qui", "sur", "ein", "eine", "zu", "auf", "kein", "nur", "ja", "och",
];

/// Words as slices of the text (no allocation: this runs on every feedback text).
fn words(text: &str) -> impl Iterator<Item = &str> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .filter(|w| !w.is_empty())
}

fn in_list(word: &str, list: &[&str]) -> bool {
    list.iter().any(|w| w.eq_ignore_ascii_case(word))
}

/// English unless there is clear evidence otherwise: mostly non-Latin letters, or foreign
/// function words outnumbering English ones. Short or ambiguous text stays English, which is
/// what VADER was built and evaluated on (tweets, reviews).
pub fn detect_language(text: &str) -> Language {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    if letters == 0 {
        return Language::En;
    }
    let latin = text
        .chars()
        .filter(|c| c.is_ascii_alphabetic() || ('\u{c0}'..='\u{24f}').contains(c))
        .count();
    if latin * 2 < letters {
        return Language::Unknown;
    }
    let (mut en, mut foreign) = (0usize, 0usize);
    for w in words(text) {
        if in_list(w, EN_STOP) {
            en += 1;
        } else if in_list(w, FOREIGN_STOP) {
            foreign += 1;
        }
    }
    if foreign >= 2 && foreign > en * 2 {
        Language::Unknown
    } else {
        Language::En
    }
}

/// The cues, from the text and its compound score (negativity feeds rage).
fn cues(phrases: &CuePhrases, text: &str, compound: Option<f64>) -> Cues {
    let mut matched = vec![];
    let (mut churn_intent, mut legal_threat, mut effort) = (false, false, false);
    for m in phrases.automaton.find_overlapping_iter(text) {
        let (cue, phrase) = phrases.meaning[m.pattern().as_usize()];
        match cue {
            Cue::Churn => churn_intent = true,
            Cue::Legal => legal_threat = true,
            Cue::Effort => effort = true,
        }
        if !matched.contains(&phrase) {
            matched.push(phrase);
        }
    }
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let alpha_tokens: Vec<&&str> = tokens
        .iter()
        .filter(|t| t.chars().filter(|c| c.is_alphabetic()).count() >= 2)
        .collect();
    let shouted = alpha_tokens
        .iter()
        .filter(|t| {
            t.chars()
                .filter(|c| c.is_alphabetic())
                .all(char::is_uppercase)
        })
        .count();
    // three shouted words is full shouting, whatever the length of the message
    let caps = (shouted as f64 / 3.0).min(1.0);
    let bangs = (text.matches('!').count() as f64 / 3.0).min(1.0);
    let profane = words(text)
        .filter(|w| {
            PROFANITY.iter().any(|p| {
                w.len() >= p.len()
                    && w.is_char_boundary(p.len())
                    && w[..p.len()].eq_ignore_ascii_case(p)
            })
        })
        .count();
    if profane > 0 {
        matched.push("profanity");
    }
    let neg = compound.map(|c| (-c).max(0.0)).unwrap_or(0.0);
    // a negative context is required (negative score, profanity, or a complaint cue):
    // shouting for joy is not rage
    let rage = if neg > 0.05 || profane > 0 || churn_intent || legal_threat || effort {
        (0.35 * caps + 0.2 * bangs + 0.25 * (profane as f64).min(2.0) / 2.0 + 0.2 * neg).min(1.0)
    } else {
        0.0
    };
    Cues {
        churn_intent,
        legal_threat,
        rage: (rage * 1000.0).round() / 1000.0,
        effort,
        matched,
    }
}

impl Analyzer {
    pub fn new() -> Analyzer {
        Analyzer {
            vader: vader_parity::SentimentIntensityAnalyzer::new(),
            phrases: CuePhrases::new(),
            cx: crate::cx_lexicon::CxLexicon::new(),
        }
    }

    /// VADER's compound and the CX-corrected one, with the phrases that corrected it, for
    /// any text whatever its language (the evaluations use this).
    pub fn cx(&self, text: &str) -> (f64, f64, Vec<crate::cx_lexicon::CxHit>) {
        let compound = self.vader.polarity_scores(text).compound;
        let hits = self.cx.hits(text);
        (
            compound,
            crate::cx_lexicon::cx_compound(compound, &hits),
            hits,
        )
    }

    /// VADER's four scores for any text, whatever its language (the evaluations use this).
    pub fn vader(&self, text: &str) -> (f64, f64, f64, f64) {
        let s = self.vader.polarity_scores(text);
        (s.compound, s.pos, s.neu, s.neg)
    }

    pub fn cues(&self, text: &str, compound: Option<f64>) -> Cues {
        cues(&self.phrases, text, compound)
    }

    pub fn analyze(&self, text: &str) -> Sentiment {
        let language = detect_language(text);
        let scores = (language == Language::En).then(|| self.vader(text));
        let compound = scores.map(|s| s.0);
        let cx_phrases = match compound {
            Some(_) => self.cx.hits(text),
            None => vec![],
        };
        let cx_compound = compound.map(|c| crate::cx_lexicon::cx_compound(c, &cx_phrases));
        Sentiment {
            compound,
            cx_compound,
            cx_phrases,
            pos: scores.map(|s| s.1),
            neu: scores.map(|s| s.2),
            neg: scores.map(|s| s.3),
            language,
            cues: self.cues(text, compound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vader_reference_sentences() {
        // values printed by Python vaderSentiment 3.3.2 for its README examples
        let a = Analyzer::new();
        assert_eq!(a.vader("VADER is smart, handsome, and funny.").0, 0.8316);
        assert_eq!(
            a.vader("VADER is not smart, handsome, nor funny.").0,
            -0.7424
        );
        assert_eq!(a.vader("The book was good.").0, 0.4404);
        assert_eq!(a.vader("A really bad, horrible book.").0, -0.8211);
    }

    #[test]
    fn cx_cues() {
        let a = Analyzer::new();
        let s = a.analyze("This is the THIRD TIME I'm calling!!! I'm switching to your competitor and talking to my lawyer.");
        assert!(s.cues.churn_intent && s.cues.legal_threat && s.cues.effort);
        assert!(s.cues.rage > 0.3, "{}", s.cues.rage);
        let calm = a.analyze("Thanks, the agent fixed it quickly. GREAT SERVICE!!!");
        assert_eq!(calm.cues.rage, 0.0, "shouting for joy is not rage");
        assert!(!calm.cues.churn_intent && !calm.cues.legal_threat && !calm.cues.effort);
    }

    #[test]
    fn other_languages_are_unknown_not_scored() {
        let a = Analyzer::new();
        let es =
            a.analyze("El servicio es muy malo y no quiero pagar por esto, pero nadie me ayuda");
        assert_eq!(es.language, Language::Unknown);
        assert_eq!(es.compound, None);
        assert_eq!(
            a.analyze("サービスがとても悪いです").language,
            Language::Unknown
        );
        assert_eq!(
            a.analyze("Yay. Another good phone interview.").language,
            Language::En
        );
        assert_eq!(a.analyze("ok").language, Language::En);
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_safe(text in "\\PC{0,200}") {
            let s = Analyzer::new().analyze(&text);
            if let Some(c) = s.compound { proptest::prop_assert!((-1.0..=1.0).contains(&c)); }
            if let Some(c) = s.cx_compound { proptest::prop_assert!((-1.0..=1.0).contains(&c)); }
            proptest::prop_assert_eq!(s.compound.is_some(), s.cx_compound.is_some());
            proptest::prop_assert!((0.0..=1.0).contains(&s.cues.rage));
        }
    }
}
