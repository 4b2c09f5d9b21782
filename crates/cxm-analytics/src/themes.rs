//! A tenant's themes as they persist between clusterings. Discovery (k-means over TF-IDF)
//! is re-run nightly and on demand, but a theme's id, the name an analyst gave it, and the
//! merges and splits analysts made must survive that: a new clustering is matched to the
//! registry by centroid similarity, so "Refund delays" stays "Refund delays" when next
//! week's clusters move a little.
//!
//! - A **merged** theme keeps its centroid, so when discovery finds it again its answers go to
//!   the theme it was merged into.
//! - A **split** is a rule on its parent: answers of the parent that use one of the split's
//!   terms belong to the split.
//! - Answers far from every centroid, and clusters too small to be a theme, go to the
//!   **noise** bucket rather than polluting a theme.
//!
//! New answers between discoveries are assigned to the nearest centroid with the vocabulary
//! of the last discovery, then through the same merge and split rules.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::text::Tokenizer;
use crate::{cluster, keyphrase};

/// The theme id of answers that belong to no theme.
pub const NOISE: &str = "noise";
/// Terms kept per centroid: enough to place short answers, small enough to store.
const CENTROID_TERMS: usize = 100;
const MAX_LABEL: usize = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    /// Its answers belong to `merged_into`.
    Merged,
    /// The last discovery did not find it; it comes back if a later one does.
    Retired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Theme {
    pub id: String,
    /// The label discovery gave it: the key phrase its texts share (class-based TF-IDF over
    /// 1–3-word phrases), else its top terms.
    pub label: String,
    /// The name an analyst gave it; wins over `label`.
    #[serde(default)]
    pub custom_label: Option<String>,
    pub top_terms: Vec<String>,
    /// Answers closest to its centre at the last discovery.
    #[serde(default)]
    pub quotes: Vec<String>,
    /// Unit-length centre over stems.
    #[serde(default)]
    pub centroid: Vec<(String, f32)>,
    pub status: Status,
    #[serde(default)]
    pub merged_into: Option<String>,
    /// A split: answers of this parent that use one of `split_terms` (stems) belong here.
    #[serde(default)]
    pub split_from: Option<String>,
    #[serde(default)]
    pub split_terms: Vec<String>,
    /// Answers at the last discovery.
    #[serde(default)]
    pub size: usize,
}

impl Theme {
    /// What people see: the analyst's name, else the discovered label.
    pub fn name(&self) -> &str {
        self.custom_label.as_deref().unwrap_or(&self.label)
    }
}

/// idf per stem, from the last discovery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary {
    pub idf: HashMap<String, f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    /// Themes to look for; None picks about sqrt(n/2).
    pub k: Option<usize>,
    pub seed: u64,
    /// An answer less similar than this to its cluster's centre (cosine) is noise.
    pub noise_below: f32,
    /// A cluster with fewer answers than this is noise, not a theme.
    pub min_size: usize,
    /// A cluster this similar to a known theme's centre is that theme.
    pub match_above: f32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            k: None,
            seed: 42,
            noise_below: 0.12,
            min_size: 3,
            match_above: 0.5,
        }
    }
}

/// What a discovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The theme id of every input text, in input order (`noise` for none).
    pub assignments: Vec<String>,
    pub k: usize,
    pub matched: usize,
    pub created: usize,
    pub retired: usize,
    pub noise: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    NotFound(String),
    Invalid(String),
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EditError::NotFound(m) | EditError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for EditError {}

/// A text as the registry sees it: unit TF-IDF weights and the set of stems.
struct Doc {
    weights: HashMap<String, f32>,
    stems: BTreeSet<String>,
}

fn similarity(doc: &HashMap<String, f32>, centroid: &[(String, f32)]) -> f32 {
    centroid
        .iter()
        .filter_map(|(s, w)| doc.get(s).map(|d| d * w))
        .sum()
}

fn stems(tok: &Tokenizer, text: &str) -> BTreeSet<String> {
    tok.tokens(text).into_iter().map(|(s, _)| s).collect()
}

fn valid_label(label: &str) -> Result<String, EditError> {
    let l = label.trim();
    if l.is_empty() || l.chars().count() > MAX_LABEL || l.chars().any(char::is_control) {
        return Err(EditError::Invalid(format!(
            "a theme name is 1 to {MAX_LABEL} printable characters"
        )));
    }
    Ok(l.to_string())
}

/// Places answers in a registry's themes (see [`Registry::placer`]).
pub struct Placer<'a> {
    registry: &'a Registry,
    postings: HashMap<&'a str, Vec<(usize, f32)>>,
}

impl Placer<'_> {
    pub fn assign(&self, tok: &Tokenizer, text: &str) -> String {
        let reg = self.registry;
        let doc = reg.doc(tok, text);
        let mut scores: HashMap<usize, f32> = HashMap::new();
        for (stem, w) in &doc.weights {
            for (i, cw) in self.postings.get(stem.as_str()).into_iter().flatten() {
                *scores.entry(*i).or_default() += w * cw;
            }
        }
        let best = scores
            .into_iter()
            .filter(|(_, s)| *s >= reg.noise_below)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        match best {
            Some((i, _)) => reg.resolve(&reg.themes[i].id, &doc.stems),
            None => NOISE.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    pub vocabulary: Vocabulary,
    pub themes: Vec<Theme>,
    /// The noise threshold of the last discovery, reused for new answers.
    #[serde(default)]
    pub noise_below: f32,
}

impl Registry {
    pub fn get(&self, id: &str) -> Option<&Theme> {
        self.themes.iter().find(|t| t.id == id)
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut Theme, EditError> {
        self.themes
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| EditError::NotFound(format!("no theme {id:?}")))
    }

    fn doc(&self, tok: &Tokenizer, text: &str) -> Doc {
        let mut weights: HashMap<String, f32> = HashMap::new();
        let mut stems = BTreeSet::new();
        for (stem, _) in tok.tokens(text) {
            if let Some(idf) = self.vocabulary.idf.get(&stem) {
                *weights.entry(stem.clone()).or_default() += idf;
            }
            stems.insert(stem);
        }
        let norm = weights.values().map(|w| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            weights.values_mut().for_each(|w| *w /= norm);
        }
        Doc { weights, stems }
    }

    /// Where an answer goes once its nearest theme is known: through merges to the surviving
    /// theme, then into a split of it whose terms the answer uses.
    pub fn resolve(&self, id: &str, stems: &BTreeSet<String>) -> String {
        let mut id = id.to_string();
        // bounded: edits never make cycles, but a hand-edited store must not hang us
        for _ in 0..32 {
            match self.get(&id) {
                Some(t) if t.status == Status::Merged => match &t.merged_into {
                    Some(to) => id = to.clone(),
                    None => break,
                },
                _ => break,
            }
        }
        for _ in 0..32 {
            let child = self.themes.iter().find(|c| {
                c.status == Status::Active
                    && c.split_from.as_deref() == Some(id.as_str())
                    && c.split_terms.iter().any(|s| stems.contains(s))
            });
            match child {
                Some(c) => id = c.id.clone(),
                None => break,
            }
        }
        id
    }

    /// The theme of a new answer: its nearest centroid (or noise), then merges and splits.
    /// Placing many answers? Build a [`Placer`] once instead.
    pub fn assign(&self, tok: &Tokenizer, text: &str) -> String {
        self.placer().assign(tok, text)
    }

    /// An index from stems to the centroids that use them, so placing an answer costs a few
    /// lookups per word rather than one per centroid term.
    pub fn placer(&self) -> Placer<'_> {
        let mut postings: HashMap<&str, Vec<(usize, f32)>> = HashMap::new();
        for (i, t) in self.themes.iter().enumerate() {
            if t.status == Status::Retired || t.split_from.is_some() {
                continue;
            }
            for (stem, w) in &t.centroid {
                postings.entry(stem.as_str()).or_default().push((i, *w));
            }
        }
        Placer {
            registry: self,
            postings,
        }
    }

    /// Clusters `texts` afresh and folds the result into the registry: clusters that match a
    /// known theme keep its id and name, new ones get `new_id()`, themes not found again
    /// retire. Returns every text's theme.
    pub fn rediscover(
        &mut self,
        texts: &[&str],
        opts: &Options,
        mut new_id: impl FnMut() -> String,
    ) -> Outcome {
        let n = texts.len();
        if n == 0 {
            return Outcome::default();
        }
        let k = opts.k.unwrap_or_else(|| cluster::default_k(n)).clamp(1, n);
        let fit = cluster::fit(texts, k, opts.seed);
        let model = &fit.model;
        let centers = &fit.kmeans.centers;
        let cnorm: Vec<f32> = centers
            .iter()
            .map(|c| c.iter().map(|w| w * w).sum::<f32>().sqrt())
            .collect();
        // cosine of each text to its own cluster's centre; far ones are noise
        let mut cluster_of: Vec<Option<usize>> = vec![None; n];
        let mut affinity = vec![0f32; n];
        for j in 0..n {
            let c = fit.kmeans.labels[j];
            if fit.rows[j].is_empty() || cnorm[c] == 0.0 {
                continue;
            }
            affinity[j] = cluster::affinity(&fit.rows[j], &centers[c]) / cnorm[c];
            if affinity[j] >= opts.noise_below {
                cluster_of[j] = Some(c);
            }
        }
        let mut sizes = vec![0usize; centers.len()];
        for c in cluster_of.iter().flatten() {
            sizes[*c] += 1;
        }
        for c in cluster_of.iter_mut() {
            if c.is_some_and(|c| sizes[c] < opts.min_size.max(1)) {
                *c = None;
            }
        }
        let live: Vec<usize> = (0..centers.len())
            .filter(|c| sizes[*c] >= opts.min_size.max(1))
            .collect();
        let stem_centroid = |c: &[f32]| -> Vec<(String, f32)> {
            let mut v: Vec<(String, f32)> = c
                .iter()
                .enumerate()
                .filter(|(_, w)| **w > 0.0)
                .map(|(i, w)| (model.vocabulary[i].clone(), *w))
                .collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(CENTROID_TERMS);
            let norm = v.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|(_, w)| *w /= norm);
            }
            v
        };
        let new_centroids: HashMap<usize, Vec<(String, f32)>> = live
            .iter()
            .map(|c| (*c, stem_centroid(&centers[*c])))
            .collect();

        // match clusters to known themes, most similar pairs first, one to one
        let mut pairs: Vec<(f32, usize, usize)> = vec![];
        for c in &live {
            let as_map: HashMap<String, f32> = new_centroids[c].iter().cloned().collect();
            for (ti, t) in self.themes.iter().enumerate() {
                if t.split_from.is_some() {
                    continue;
                }
                let s = similarity(&as_map, &t.centroid);
                if s >= opts.match_above {
                    pairs.push((s, *c, ti));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut theme_of_cluster: HashMap<usize, usize> = HashMap::new();
        let mut taken = vec![false; self.themes.len()];
        for (_, c, ti) in pairs {
            if theme_of_cluster.contains_key(&c) || taken[ti] {
                continue;
            }
            theme_of_cluster.insert(c, ti);
            taken[ti] = true;
        }
        let mut out = Outcome {
            k,
            matched: theme_of_cluster.len(),
            ..Outcome::default()
        };
        let known = self.themes.len();
        let anchors: Vec<Vec<String>> = (0..centers.len())
            .map(|c| cluster::top_terms(model, &centers[c], 3))
            .collect();
        let phrases = keyphrase::class_labels(texts, &cluster_of, centers.len(), &anchors);
        for c in &live {
            let top_terms = cluster::top_terms(model, &centers[*c], 5);
            // the key phrase the cluster's texts share; the stems' triple when there is none
            let label = phrases[*c]
                .clone()
                .unwrap_or_else(|| cluster::label_of(&top_terms));
            let centroid = new_centroids[c].clone();
            match theme_of_cluster.get(c) {
                Some(ti) => {
                    let t = &mut self.themes[*ti];
                    t.label = label;
                    t.top_terms = top_terms;
                    t.centroid = centroid;
                    if t.status == Status::Retired {
                        t.status = Status::Active;
                    }
                }
                None => {
                    self.themes.push(Theme {
                        id: new_id(),
                        label,
                        custom_label: None,
                        top_terms,
                        quotes: vec![],
                        centroid,
                        status: Status::Active,
                        merged_into: None,
                        split_from: None,
                        split_terms: vec![],
                        size: 0,
                    });
                    theme_of_cluster.insert(*c, self.themes.len() - 1);
                    out.created += 1;
                }
            }
        }
        for (ti, t) in self.themes.iter_mut().enumerate().take(known) {
            if !taken[ti] && t.split_from.is_none() && t.status == Status::Active {
                t.status = Status::Retired;
                out.retired += 1;
            }
        }
        self.vocabulary = Vocabulary {
            idf: model
                .vocabulary
                .iter()
                .cloned()
                .zip(model.idf.iter().copied())
                .collect(),
        };
        self.noise_below = opts.noise_below;

        let tok = Tokenizer::default();
        out.assignments = (0..n)
            .map(|j| match cluster_of[j] {
                Some(c) => {
                    let id = &self.themes[theme_of_cluster[&c]].id;
                    self.resolve(id, &stems(&tok, texts[j]))
                }
                None => NOISE.to_string(),
            })
            .collect();
        out.noise = out.assignments.iter().filter(|a| *a == NOISE).count();
        // sizes and quotes follow the final assignment, so merged and split themes get theirs
        let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
        for (j, a) in out.assignments.iter().enumerate() {
            members.entry(a.as_str()).or_default().push(j);
        }
        for t in self.themes.iter_mut() {
            match members.get_mut(t.id.as_str()) {
                Some(m) => {
                    m.sort_by(|a, b| affinity[*b].total_cmp(&affinity[*a]).then(a.cmp(b)));
                    t.size = m.len();
                    // three different voices: an answer given twice is quoted once
                    let mut quotes: Vec<String> = vec![];
                    for j in m.iter() {
                        if quotes.len() == 3 {
                            break;
                        }
                        if !quotes.iter().any(|q| q == texts[*j]) {
                            quotes.push(texts[*j].to_string());
                        }
                    }
                    t.quotes = quotes;
                }
                None => {
                    t.size = 0;
                    if t.status != Status::Active {
                        t.quotes.clear();
                    }
                }
            }
        }
        out
    }

    /// Gives a theme an analyst's name (kept across re-discovery).
    pub fn rename(&mut self, id: &str, label: &str) -> Result<(), EditError> {
        let label = valid_label(label)?;
        let t = self.get_mut(id)?;
        if t.status == Status::Merged {
            return Err(EditError::Invalid(format!(
                "theme {id:?} was merged; rename the theme it was merged into"
            )));
        }
        t.custom_label = Some(label);
        Ok(())
    }

    /// Merges `id` into `into`: its answers, now and after re-discovery, belong to `into`;
    /// its splits move with it.
    pub fn merge(&mut self, id: &str, into: &str) -> Result<(), EditError> {
        if id == into {
            return Err(EditError::Invalid(
                "a theme cannot be merged into itself".into(),
            ));
        }
        for x in [id, into] {
            if self.get_mut(x)?.status == Status::Merged {
                return Err(EditError::Invalid(format!(
                    "theme {x:?} was already merged"
                )));
            }
        }
        for t in self.themes.iter_mut() {
            if t.split_from.as_deref() == Some(id) && t.id != into {
                t.split_from = Some(into.to_string());
            }
        }
        let t = self.get_mut(id)?;
        t.status = Status::Merged;
        t.merged_into = Some(into.to_string());
        Ok(())
    }

    /// Splits answers that use any of `words` out of `id` into a new theme named `label`.
    pub fn split(
        &mut self,
        id: &str,
        words: &[String],
        label: &str,
        new_id: String,
    ) -> Result<(), EditError> {
        let label = valid_label(label)?;
        let tok = Tokenizer::default();
        let split_terms: Vec<String> = words
            .iter()
            .flat_map(|w| tok.tokens(w))
            .map(|(s, _)| s)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if split_terms.is_empty() || words.len() > 20 {
            return Err(EditError::Invalid(
                "a split needs 1 to 20 words of two or more letters".into(),
            ));
        }
        let parent = self.get_mut(id)?;
        if parent.status == Status::Merged {
            return Err(EditError::Invalid(format!(
                "theme {id:?} was merged; split the theme it was merged into"
            )));
        }
        self.themes.push(Theme {
            id: new_id,
            label: label.clone(),
            custom_label: Some(label),
            top_terms: words.iter().map(|w| w.trim().to_lowercase()).collect(),
            quotes: vec![],
            centroid: vec![],
            status: Status::Active,
            merged_into: None,
            split_from: Some(id.to_string()),
            split_terms,
            size: 0,
        });
        Ok(())
    }

    /// The stems of a text, for [`Registry::resolve`].
    pub fn stems(text: &str) -> BTreeSet<String> {
        stems(&Tokenizer::default(), text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(extra: usize) -> Vec<String> {
        let billing = [
            "I was charged twice on my card",
            "double charge on my card this month",
            "my card was charged twice for one order",
            "refund for the double charge please",
        ];
        let login = [
            "cannot log in, password reset link broken",
            "password reset email never arrives",
            "locked out of my account after password reset",
            "login fails after I reset my password",
        ];
        let delivery = [
            "parcel delivery was late by a week",
            "delivery late again and the parcel was damaged",
            "courier lost my parcel, delivery never came",
            "late delivery, parcel left in the rain",
        ];
        let mut v = vec![];
        for i in 0..(3 + extra) {
            for group in [&billing, &login, &delivery] {
                v.push(format!(
                    "{} {}",
                    group[i % 4],
                    ["", "today", "again"][i % 3]
                ));
            }
        }
        v
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("th{n}")
        }
    }

    fn opts() -> Options {
        Options {
            k: Some(3),
            ..Options::default()
        }
    }

    fn theme_with(reg: &Registry, word: &str) -> String {
        reg.themes
            .iter()
            .find(|t| t.status == Status::Active && t.top_terms.iter().any(|w| w == word))
            .map(|t| t.id.clone())
            .unwrap_or_else(|| panic!("no theme about {word}: {:?}", reg.themes))
    }

    #[test]
    fn rediscovery_keeps_ids_names_merges_and_splits() {
        let texts = corpus(0);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut reg = Registry::default();
        let mut next = ids();
        let first = reg.rediscover(&refs, &opts(), &mut next);
        assert_eq!(first.created, 3);
        let card = theme_with(&reg, "card");
        let password = theme_with(&reg, "password");
        let delivery = theme_with(&reg, "delivery");
        reg.rename(&card, "Double charges").unwrap();
        reg.merge(&password, &delivery).unwrap();
        reg.split(&card, &["refund".into()], "Refunds", next())
            .unwrap();

        // more data, a fresh clustering: ids, names, the merge and the split all hold
        let texts = corpus(6);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let again = reg.rediscover(&refs, &opts(), &mut next);
        assert_eq!(again.created, 0, "{:?}", reg.themes);
        assert_eq!(again.matched, 3);
        assert_eq!(reg.get(&card).unwrap().name(), "Double charges");
        for (t, a) in texts.iter().zip(&again.assignments) {
            if t.contains("refund") {
                assert_eq!(reg.get(a).unwrap().name(), "Refunds");
            } else if t.contains("card") {
                assert_eq!(a, &card);
            } else {
                assert_eq!(a, &delivery, "{t}");
            }
        }
        // new answers between discoveries follow the same rules
        let tok = Tokenizer::default();
        assert_eq!(reg.assign(&tok, "charged twice on my card"), card);
        assert_eq!(reg.assign(&tok, "password reset is broken"), delivery);
        assert_eq!(
            reg.get(&reg.assign(&tok, "refund the card charge"))
                .unwrap()
                .name(),
            "Refunds"
        );
        assert_eq!(reg.assign(&tok, "zebra xylophone"), NOISE);
    }

    #[test]
    fn small_and_distant_clusters_are_noise_and_lost_themes_retire() {
        let mut texts = corpus(2);
        texts.push("purple monkey dishwasher".into());
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut reg = Registry::default();
        let out = reg.rediscover(
            &refs,
            &Options {
                k: Some(4),
                ..Options::default()
            },
            ids(),
        );
        assert_eq!(out.assignments.last().unwrap(), NOISE);
        assert_eq!(out.noise, 1);
        // only billing talk now: the other themes retire, and come back with their ids
        let login = theme_with(&reg, "password");
        let billing: Vec<&str> = refs
            .iter()
            .copied()
            .filter(|t| t.contains("card"))
            .collect();
        let out = reg.rediscover(
            &billing,
            &Options {
                k: Some(1),
                ..Options::default()
            },
            ids(),
        );
        assert_eq!(out.retired, 2);
        assert_eq!(reg.get(&login).unwrap().status, Status::Retired);
        reg.rediscover(
            &refs,
            &Options {
                k: Some(4),
                ..Options::default()
            },
            ids(),
        );
        assert_eq!(reg.get(&login).unwrap().status, Status::Active);
    }

    #[test]
    fn edits_are_checked() {
        let texts = corpus(0);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut reg = Registry::default();
        reg.rediscover(&refs, &opts(), ids());
        let a = reg.themes[0].id.clone();
        let b = reg.themes[1].id.clone();
        assert!(matches!(
            reg.rename("nope", "x"),
            Err(EditError::NotFound(_))
        ));
        assert!(matches!(reg.rename(&a, "  "), Err(EditError::Invalid(_))));
        assert!(matches!(
            reg.rename(&a, &"x".repeat(81)),
            Err(EditError::Invalid(_))
        ));
        assert!(matches!(reg.merge(&a, &a), Err(EditError::Invalid(_))));
        reg.merge(&a, &b).unwrap();
        assert!(matches!(reg.merge(&b, &a), Err(EditError::Invalid(_))));
        assert!(matches!(reg.rename(&a, "x"), Err(EditError::Invalid(_))));
        assert!(matches!(
            reg.split(&b, &["!!".into()], "x", "n".into()),
            Err(EditError::Invalid(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn resolve_always_ends(edges in proptest::collection::vec((0usize..6, 0usize..6, proptest::bool::ANY), 0..12)) {
            let mut reg = Registry::default();
            for i in 0..6 {
                reg.themes.push(Theme {
                    id: format!("t{i}"), label: String::new(), custom_label: None, top_terms: vec![],
                    quotes: vec![], centroid: vec![], status: Status::Active, merged_into: None,
                    split_from: None, split_terms: vec![], size: 0,
                });
            }
            for (a, b, merge) in edges {
                let (a, b) = (format!("t{a}"), format!("t{b}"));
                if merge { let _ = reg.merge(&a, &b); } else { let _ = reg.split(&a, &["word".into()], "w", format!("{b}x")); }
            }
            let r = reg.resolve("t0", &Registry::stems("word"));
            proptest::prop_assert!(reg.get(&r).is_some());
        }
    }
}
