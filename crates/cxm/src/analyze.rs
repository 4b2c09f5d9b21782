//! `cxm analyze` and `cxm eval`: the analysers as plain Unix tools, and the evaluations
//! against the published datasets (read from a data directory, never copied in).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cxm_analytics::metrics::{pearson, vader_class, weighted_prf};
use cxm_analytics::Analyzer;
use serde_json::{json, Value};

/// One JSON object per input line: compound, pos, neu, neg, language, cues.
pub fn sentiment_stream(
    input: impl BufRead,
    mut out: impl Write,
    all_languages: bool,
) -> anyhow::Result<u64> {
    let a = Analyzer::new();
    let mut n = 0;
    for line in input.lines() {
        let line = line.context("stdin is not utf-8 text")?;
        let mut s = a.analyze(&line);
        if all_languages && s.compound.is_none() {
            let (c, p, u, g) = a.vader(&line);
            (s.compound, s.pos, s.neu, s.neg) = (Some(c), Some(p), Some(u), Some(g));
        }
        serde_json::to_writer(&mut out, &s)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

const CORPORA: &[(&str, &str)] = &[
    ("tweets", "tweets_GroundTruth.txt"),
    ("movie", "movieReviewSnippets_GroundTruth.txt"),
    ("amazon", "amazonReviewSnippets_GroundTruth.txt"),
    ("nyt", "nytEditorialSnippets_GroundTruth.txt"),
];

/// Reads `id<TAB>mean rating<TAB>text` lines.
fn read_corpus(path: &Path) -> anyhow::Result<Vec<(f64, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rows = vec![];
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, '\t');
        let (_, rating, body) = (parts.next(), parts.next(), parts.next());
        let rating: f64 = rating
            .and_then(|r| r.trim().parse().ok())
            .with_context(|| format!("{} line {}: no rating", path.display(), i + 1))?;
        rows.push((rating, body.unwrap_or("").to_string()));
    }
    Ok(rows)
}

/// Hutto & Gilbert's protocol (see the dataset's reference_values.json): truth class is the
/// sign of the mean human rating, VADER's class thresholds compound at ±0.05, P/R/F1 are
/// support-weighted, r is Pearson between compound and rating.
pub fn eval_sentiment(data: &Path, assert_floors: bool) -> anyhow::Result<Value> {
    let dir = data.join("vader");
    if !dir.is_dir() {
        eprintln!(
            "skipping sentiment evaluation: {} not found (pass --data)",
            dir.display()
        );
        let mut out = json!({"skipped": true});
        for (name, set) in cxm_analytics::cx_lexicon::CX_SETS {
            out[name] = cx_set_report(&Analyzer::new(), set);
        }
        return Ok(out);
    }
    let reference: Value = std::fs::read_to_string(dir.join("reference_values.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let a = Analyzer::new();
    let mut report = serde_json::Map::new();
    let mut all_texts = vec![];
    for (name, file) in CORPORA {
        let path = dir.join(file);
        if !path.exists() {
            continue;
        }
        let rows = read_corpus(&path)?;
        let scored: Vec<(f64, f64)> = rows
            .iter()
            .map(|(_, t)| {
                let (c, cx, _) = a.cx(t);
                (c, cx)
            })
            .collect();
        let compounds: Vec<f64> = scored.iter().map(|s| s.0).collect();
        let cx: Vec<f64> = scored.iter().map(|s| s.1).collect();
        let ratings: Vec<f64> = rows.iter().map(|(r, _)| *r).collect();
        let truth: Vec<i8> = ratings
            .iter()
            .map(|r| {
                if *r > 0.0 {
                    1
                } else if *r < 0.0 {
                    -1
                } else {
                    0
                }
            })
            .collect();
        let predicted: Vec<i8> = compounds.iter().map(|c| vader_class(*c)).collect();
        let (p, r, f1) = weighted_prf(&truth, &predicted);
        let cx_predicted: Vec<i8> = cx.iter().map(|c| vader_class(*c)).collect();
        let (_, _, cx_f1) = weighted_prf(&truth, &cx_predicted);
        report.insert(
            name.to_string(),
            json!({"n": rows.len(), "r": round3(pearson(&compounds, &ratings).unwrap_or(0.0)), "P": round3(p), "R": round3(r), "F1": round3(f1),
                   "cx_r": round3(pearson(&cx, &ratings).unwrap_or(0.0)), "cx_F1": round3(cx_f1),
                   "published": reference["published"][name]["vader"]}),
        );
        all_texts.extend(rows.into_iter().map(|(_, t)| t));
    }
    for (name, set) in cxm_analytics::cx_lexicon::CX_SETS {
        report.insert(name.to_string(), cx_set_report(&a, set));
    }
    // throughput on one core: the whole corpus, scored with cues as the product does
    let started = Instant::now();
    let mut checksum = 0.0;
    for t in &all_texts {
        checksum += a.analyze(t).compound.unwrap_or(0.0);
    }
    let secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for t in &all_texts {
        checksum += a.vader(t).0;
    }
    let vader_secs = started.elapsed().as_secs_f64();
    report.insert(
        "throughput".into(),
        json!({"sentences": all_texts.len(), "seconds": secs, "sentences_per_sec": all_texts.len() as f64 / secs,
               "vader_only_sentences_per_sec": all_texts.len() as f64 / vader_secs, "checksum": checksum}),
    );
    let out = Value::Object(report);
    if assert_floors {
        let t = &out["tweets"];
        let (r, f1) = (
            t["r"].as_f64().unwrap_or(0.0),
            t["F1"].as_f64().unwrap_or(0.0),
        );
        anyhow::ensure!(
            r >= 0.87 && f1 >= 0.94,
            "sentiment below the floor on tweets: r {r} (>= 0.87), F1 {f1} (>= 0.94)"
        );
        // the CX correction must not cost general text more than a point
        let cx_f1 = t["cx_F1"].as_f64().unwrap_or(0.0);
        anyhow::ensure!(
            cx_f1 >= f1 - 0.01,
            "cx_compound costs too much on tweets: F1 {cx_f1} against VADER's {f1}"
        );
    }
    Ok(out)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One of our labelled CX sets (`label<TAB>text`): VADER's compound and `cx_compound` side by
/// side, classes at ±0.05 as VADER's authors use, with accuracy, weighted F1 and the
/// confusion counts (truth → predicted).
pub fn cx_set_report(a: &Analyzer, set: &str) -> Value {
    let rows = cxm_analytics::cx_lexicon::labelled(set);
    let truth: Vec<i8> = rows.iter().map(|(l, _)| *l).collect();
    let (mut vader, mut cx) = (vec![], vec![]);
    for (_, t) in &rows {
        let (c, x, _) = a.cx(t);
        vader.push(vader_class(c));
        cx.push(vader_class(x));
    }
    let score = |predicted: &[i8]| {
        let (_, _, f1) = weighted_prf(&truth, predicted);
        let right = truth.iter().zip(predicted).filter(|(t, p)| t == p).count();
        let mut confusion = serde_json::Map::new();
        for t in [-1i8, 0, 1] {
            for p in [-1i8, 0, 1] {
                let n = truth
                    .iter()
                    .zip(predicted)
                    .filter(|(a, b)| **a == t && **b == p)
                    .count();
                confusion.insert(format!("{t}->{p}"), json!(n));
            }
        }
        json!({"accuracy": round3(right as f64 / truth.len().max(1) as f64), "F1": round3(f1), "confusion": confusion})
    };
    json!({"n": rows.len(), "vader": score(&vader), "cx": score(&cx)})
}

pub fn default_data_dir() -> PathBuf {
    PathBuf::from("../shared/data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_json_object_per_line() {
        let input = "I love this product!\nThe WORST support ever, I'm cancelling.\n\nEsto es muy malo y no me gusta para nada\n";
        let mut out = vec![];
        assert_eq!(
            sentiment_stream(input.as_bytes(), &mut out, false).unwrap(),
            4
        );
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0]["compound"].as_f64().unwrap() > 0.5);
        assert!(lines[1]["compound"].as_f64().unwrap() < -0.5);
        assert_eq!(lines[1]["cues"]["churn_intent"], true);
        assert_eq!(
            lines[2]["compound"], 0.0,
            "an empty line is neutral, not skipped"
        );
        assert_eq!(lines[3]["language"], "unknown");
        assert_eq!(lines[3]["compound"], Value::Null);
    }

    #[test]
    fn eval_skips_without_data() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(eval_sentiment(dir.path(), true).unwrap()["skipped"], true);
    }
}

/// Reads one text per line, or the first column of a TSV (its header row skipped when the
/// file ends in .tsv).
pub fn read_texts(path: &Path) -> anyhow::Result<Vec<String>> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&raw);
    let tsv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let mut out: Vec<String> = text
        .lines()
        .map(|l| {
            l.trim_end_matches('\r')
                .split('\t')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    if tsv && !out.is_empty() {
        out.remove(0);
    }
    Ok(out)
}

pub use cxm_analytics::cluster::default_k;

/// `{"line", "theme", "label"}` per input line (1-based lines), then nothing else.
pub fn themes_jsonl(
    texts: &[String],
    k: Option<usize>,
    seed: u64,
    mut out: impl Write,
) -> anyhow::Result<()> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let d =
        cxm_analytics::cluster::discover(&refs, k.unwrap_or_else(|| default_k(texts.len())), seed);
    for (i, t) in d.assignments.iter().enumerate() {
        serde_json::to_writer(
            &mut out,
            &json!({"line": i + 1, "theme": t, "label": d.themes[*t].label}),
        )?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// The theme summary: label, top terms, size and representative quotes.
pub fn themes_summary(texts: &[String], k: Option<usize>, seed: u64) -> Value {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let d =
        cxm_analytics::cluster::discover(&refs, k.unwrap_or_else(|| default_k(texts.len())), seed);
    let mut themes: Vec<Value> = d
        .themes
        .iter()
        .filter(|t| t.size > 0)
        .map(|t| json!({"theme": t.id, "label": t.label, "top_terms": t.top_terms, "size": t.size, "quotes": t.representatives.iter().map(|i| &texts[*i]).collect::<Vec<_>>()}))
        .collect();
    themes.sort_by(|a, b| b["size"].as_u64().cmp(&a["size"].as_u64()));
    json!({"texts": texts.len(), "themes": themes})
}

/// Intent discovery on the banking test split (TEXTOIR), K given: NMI, ARI and ACC as
/// scikit-learn/scipy compute them, and the time it took.
pub fn eval_themes(data: &Path, assert_floors: bool) -> anyhow::Result<Value> {
    let path = data.join("textoir_banking/test.tsv");
    if !path.exists() {
        eprintln!(
            "skipping theme evaluation: {} not found (pass --data)",
            path.display()
        );
        let mut out = json!({"skipped": true});
        for (name, set) in cxm_analytics::cx_lexicon::CX_SETS {
            out[name] = cx_set_report(&Analyzer::new(), set);
        }
        return Ok(out);
    }
    let raw = std::fs::read_to_string(&path)?;
    let mut texts = vec![];
    let mut labels = vec![];
    for line in raw.lines().skip(1) {
        if let Some((t, l)) = line.trim_end_matches('\r').split_once('\t') {
            texts.push(t.to_string());
            labels.push(l.to_string());
        }
    }
    let mut names: Vec<&String> = labels.iter().collect();
    names.sort();
    names.dedup();
    let truth: Vec<usize> = labels
        .iter()
        .map(|l| names.binary_search(&l).unwrap_or(0))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let score = |k: usize| {
        let started = Instant::now();
        let d = cxm_analytics::cluster::discover(&refs, k, 42);
        let secs = started.elapsed().as_secs_f64();
        let pct = |x: f64| (x * 1000.0).round() / 10.0;
        json!({"k": k, "NMI": pct(cxm_analytics::metrics::nmi(&truth, &d.assignments)), "ARI": pct(cxm_analytics::metrics::ari(&truth, &d.assignments)),
               "ACC": pct(cxm_analytics::metrics::cluster_accuracy(&truth, &d.assignments)), "seconds": secs})
    };
    let given = score(names.len());
    let auto = score(default_k(texts.len()));
    let out = json!({"dataset": "textoir banking test", "n": texts.len(), "intents": names.len(), "k_given": given, "k_automatic": auto,
                     "published": {"kmeans_glove": {"NMI": 49.3, "ARI": 13.0, "ACC": 28.6}, "sccl": {"NMI": 63.9, "ARI": 27.0, "ACC": 40.5}, "usnid": {"NMI": 75.3, "ARI": 43.3, "ACC": 54.8}}});
    if assert_floors {
        let (n, a) = (
            given["NMI"].as_f64().unwrap_or(0.0),
            given["ACC"].as_f64().unwrap_or(0.0),
        );
        anyhow::ensure!(
            n >= 55.0 && a >= 33.0,
            "themes below the floor: NMI {n} (>= 55), ACC {a} (>= 33)"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod theme_tests {
    use super::*;

    #[test]
    fn jsonl_has_one_line_per_input_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.tsv");
        std::fs::write(&p, "text\tlabel\ncard declined\ta\nmy card was declined\ta\nreset my password\tb\nforgot password\tb\n").unwrap();
        let texts = read_texts(&p).unwrap();
        assert_eq!(
            texts,
            [
                "card declined",
                "my card was declined",
                "reset my password",
                "forgot password"
            ]
        );
        let mut out = vec![];
        themes_jsonl(&texts, Some(2), 1, &mut out).unwrap();
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["line"], 1);
        assert_eq!(lines[0]["theme"], lines[1]["theme"]);
        assert_ne!(lines[0]["theme"], lines[2]["theme"]);
        assert!(eval_themes(dir.path(), true).unwrap()["skipped"]
            .as_bool()
            .unwrap());
    }
}
