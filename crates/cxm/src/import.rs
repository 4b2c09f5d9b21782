//! `cxm import events FILE --map field=column,...`: history from CSV. Mapped columns become
//! message fields (`userId`, `anonymousId`, `event`, `timestamp`, `messageId`, `type`,
//! `groupId`, or `traits.x`/`properties.x`/`context.x`); every other column becomes a
//! property. Rows without a messageId get one derived from their content, so importing the
//! same file twice adds nothing.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

const TOP_LEVEL: &[&str] = &[
    "userId",
    "anonymousId",
    "event",
    "timestamp",
    "messageId",
    "type",
    "groupId",
    "name",
    "previousId",
];

pub fn parse_map(spec: &str) -> anyhow::Result<HashMap<String, String>> {
    let mut m = HashMap::new();
    for pair in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (field, column) = pair
            .split_once('=')
            .with_context(|| format!("--map entry {pair:?} must be field=column"))?;
        let field = field.trim();
        let ok = TOP_LEVEL.contains(&field)
            || ["traits.", "properties.", "context."]
                .iter()
                .any(|p| field.starts_with(p) && field.len() > p.len());
        anyhow::ensure!(
            ok,
            "--map field {field:?} must be one of {} or traits.x, properties.x, context.x",
            TOP_LEVEL.join(", ")
        );
        m.insert(column.trim().to_string(), field.to_string());
    }
    Ok(m)
}

fn cell(v: &str) -> Value {
    if let Ok(i) = v.parse::<i64>() {
        return json!(i);
    }
    if let Ok(f) = v.parse::<f64>() {
        if f.is_finite() {
            return json!(f);
        }
    }
    json!(v)
}

/// Reads the CSV into messages; a malformed row is an error naming its line.
pub fn read(path: &Path, map: &HashMap<String, String>) -> anyhow::Result<Vec<Value>> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let headers = rdr.headers()?.clone();
    for col in map.keys() {
        anyhow::ensure!(
            headers.iter().any(|h| h == col),
            "--map names column {col:?}, which {} does not have (columns: {})",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(", ")
        );
    }
    let mut out = vec![];
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{} line {}", path.display(), i + 2))?;
        let mut msg = Map::new();
        let mut props = Map::new();
        let mut nested: HashMap<&str, Map<String, Value>> = HashMap::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            if v.is_empty() {
                continue;
            }
            match map.get(h).map(String::as_str) {
                Some(f) if TOP_LEVEL.contains(&f) => {
                    msg.insert(f.to_string(), json!(v));
                }
                Some(f) => {
                    let (obj, key) = f.split_once('.').unwrap_or(("properties", f));
                    let obj = ["traits", "context"]
                        .into_iter()
                        .find(|o| *o == obj)
                        .unwrap_or("properties");
                    nested
                        .entry(obj)
                        .or_default()
                        .insert(key.to_string(), cell(v));
                }
                None => {
                    props.insert(h.to_string(), cell(v));
                }
            }
        }
        nested.entry("properties").or_default().extend(props);
        for (k, v) in nested {
            msg.insert(k.to_string(), Value::Object(v));
        }
        msg.entry("type").or_insert_with(|| json!("track"));
        // the spec reads top-level traits only on identify and group; on other calls the
        // person's traits travel in context.traits, which is what a traits.x column means
        if !matches!(
            msg.get("type").and_then(Value::as_str),
            Some("identify" | "group")
        ) {
            if let Some(t) = msg.remove("traits") {
                let ctx = msg.entry("context").or_insert_with(|| json!({}));
                if let Some(c) = ctx.as_object_mut() {
                    c.insert("traits".into(), t);
                }
            }
        }
        if !msg.contains_key("messageId") {
            let digest = Sha256::digest(rec.iter().collect::<Vec<_>>().join("\u{1f}").as_bytes());
            msg.insert(
                "messageId".into(),
                json!(format!("csv-{}", &hex::encode(digest)[..32])),
            );
        }
        out.push(Value::Object(msg));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_columns_and_derives_stable_ids() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.csv");
        std::fs::write(&p, "uid,what,when,plan,amount\nu1,Payment Failed,2025-01-02T03:04:05Z,pro,49.5\nu2,Signed Up,2025-01-03,,\n").unwrap();
        let map = parse_map("userId=uid,event=what,timestamp=when,traits.plan=plan").unwrap();
        let a = read(&p, &map).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0]["userId"], "u1");
        assert_eq!(
            a[0]["context"]["traits"]["plan"], "pro",
            "a track call carries traits in its context"
        );
        assert_eq!(a[0]["properties"]["amount"], 49.5);
        assert_eq!(a[0]["type"], "track");
        assert_eq!(read(&p, &map).unwrap()[0]["messageId"], a[0]["messageId"]);
        assert!(parse_map("bogus=uid").is_err());
        assert!(read(&p, &parse_map("userId=nope").unwrap()).is_err());
    }
}

/// One `question:type=column` entry of `cxm import feedback --map`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackColumn {
    pub question: String,
    pub kind: String,
    pub column: String,
}

pub fn parse_feedback_map(spec: &str) -> anyhow::Result<Vec<FeedbackColumn>> {
    let mut out = vec![];
    for pair in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (lhs, column) = pair
            .split_once('=')
            .with_context(|| format!("--map entry {pair:?} must be question:type=column"))?;
        let (question, kind) = lhs
            .split_once(':')
            .with_context(|| format!("--map entry {pair:?} must name a type: question:nps=Q1"))?;
        anyhow::ensure!(
            cxm_domain::feedback::FieldType::parse(kind.trim()).is_some(),
            "--map type {kind:?} must be nps, csat, ces, rating, choice or text"
        );
        out.push(FeedbackColumn {
            question: question.trim().into(),
            kind: kind.trim().into(),
            column: column.trim().into(),
        });
    }
    anyhow::ensure!(!out.is_empty(), "--map names no columns");
    Ok(out)
}

/// Reads survey answers from CSV into answer objects (one per mapped, non-empty cell).
/// Qualtrics exports are recognised by their third row of `{"ImportId": ...}` and its two
/// extra header rows are skipped; their ResponseId and RecordedDate columns are used.
pub fn read_feedback(
    path: &Path,
    map: &[FeedbackColumn],
    survey_id: Option<&str>,
    channel: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let headers = rdr.headers()?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let mut records: Vec<csv::StringRecord> = rdr
        .records()
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not valid csv", path.display()))?;
    let qualtrics = records
        .get(1)
        .is_some_and(|r| r.iter().any(|c| c.starts_with("{\"ImportId\"")));
    if qualtrics {
        records.drain(..2);
    }
    let response_col = col("ResponseId")
        .or_else(|| col("response_id"))
        .with_context(|| format!("{} has no ResponseId or response_id column", path.display()))?;
    let time_col = col("RecordedDate")
        .or_else(|| col("EndDate"))
        .or_else(|| col("collected_at"));
    let ident_col = col("identifier").or_else(|| col("RecipientEmail"));
    let mapped: Vec<(usize, &FeedbackColumn)> = map
        .iter()
        .map(|m| {
            col(&m.column).map(|i| (i, m)).with_context(|| {
                format!(
                    "--map names column {:?}, which {} does not have",
                    m.column,
                    path.display()
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut out = vec![];
    for rec in &records {
        let response = rec.get(response_col).unwrap_or("").trim();
        if response.is_empty() {
            continue;
        }
        for (i, m) in &mapped {
            let cell = rec.get(*i).unwrap_or("").trim();
            if cell.is_empty() {
                continue;
            }
            let value = if matches!(m.kind.as_str(), "text" | "choice") {
                json!(cell)
            } else {
                cell.parse::<f64>().map(|n| json!(n)).unwrap_or(json!(cell))
            };
            let mut a = json!({"response_id": response, "question": m.question, "type": m.kind, "value": value, "channel": channel, "survey_id": survey_id});
            if let Some(t) = time_col
                .and_then(|c| rec.get(c))
                .filter(|t| !t.trim().is_empty())
            {
                a["collected_at"] = json!(t.trim());
            }
            if let Some(e) = ident_col
                .and_then(|c| rec.get(c))
                .map(str::trim)
                .filter(|e| !e.is_empty())
            {
                a["identifier"] = json!(if e.contains(':') {
                    e.to_string()
                } else {
                    format!("email:{e}")
                });
            }
            out.push(a);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod feedback_tests {
    use super::*;

    const QUALTRICS: &str = "StartDate,EndDate,Status,ResponseId,RecordedDate,RecipientEmail,Q1,Q2\n\
Start Date,End Date,Response Type,Response ID,Recorded Date,Recipient Email,How likely are you to recommend us?,Why?\n\
\"{\"\"ImportId\"\":\"\"startDate\"\"}\",\"{\"\"ImportId\"\":\"\"endDate\"\"}\",\"{\"\"ImportId\"\":\"\"status\"\"}\",\"{\"\"ImportId\"\":\"\"_recordId\"\"}\",\"{\"\"ImportId\"\":\"\"recordedDate\"\"}\",\"{\"\"ImportId\"\":\"\"recipientEmail\"\"}\",\"{\"\"ImportId\"\":\"\"QID1\"\"}\",\"{\"\"ImportId\"\":\"\"QID2_TEXT\"\"}\"\n\
2024-01-05 10:00:00,2024-01-05 10:02:00,IP Address,R_1abc,2024-01-05 10:02:01,ada@example.com,9,Quick and friendly\n\
2024-01-06 11:00:00,2024-01-06 11:03:00,IP Address,R_2def,2024-01-06 11:03:05,,3,\"Slow, had to call twice\"\n";

    #[test]
    fn qualtrics_export_with_its_extra_header_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("export.csv");
        std::fs::write(&p, QUALTRICS).unwrap();
        let map = parse_feedback_map("nps:nps=Q1,why:text=Q2").unwrap();
        let answers = read_feedback(&p, &map, Some("relationship"), "email").unwrap();
        assert_eq!(answers.len(), 4);
        assert_eq!(answers[0]["response_id"], "R_1abc");
        assert_eq!(answers[0]["value"], 9.0);
        assert_eq!(answers[0]["identifier"], "email:ada@example.com");
        assert_eq!(answers[0]["collected_at"], "2024-01-05 10:02:01");
        assert_eq!(answers[3]["value"], "Slow, had to call twice");
        assert!(answers[2].get("identifier").is_none());
        assert!(parse_feedback_map("nps=Q1").is_err());
        assert!(parse_feedback_map("nps:stars=Q1").is_err());
        assert!(
            read_feedback(&p, &parse_feedback_map("x:nps=Q9").unwrap(), None, "email").is_err()
        );
    }
}
