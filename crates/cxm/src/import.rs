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
