//! Data coming in (under Settings): events in the log, customers, quarantine, and ingest by
//! channel over the last days.

use super::*;

#[derive(Serialize)]
pub(crate) struct Segment {
    pub(crate) channel: String,
    pub(crate) events: i64,
    pub(crate) y: f64,
    pub(crate) h: f64,
}

#[derive(Serialize)]
pub(crate) struct Bar {
    pub(crate) day: String,
    pub(crate) label: Option<String>,
    /// Where the label hangs from: the last one ends at its bar so it is never cut off.
    pub(crate) anchor: &'static str,
    pub(crate) x: f64,
    pub(crate) segments: Vec<Segment>,
}

#[derive(Serialize)]
pub(crate) struct Tick {
    pub(crate) y: f64,
    pub(crate) label: String,
}

#[derive(Serialize)]
pub(crate) struct Chart {
    pub(crate) width: f64,
    pub(crate) height: f64,
    pub(crate) left: f64,
    pub(crate) top: f64,
    pub(crate) bar_width: f64,
    pub(crate) bars: Vec<Bar>,
    pub(crate) ticks: Vec<Tick>,
    pub(crate) channels: Vec<String>,
}

pub(crate) fn nice_max(v: i64) -> i64 {
    let v = v.max(1) as f64;
    let mag = 10f64.powf(v.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|s| s * mag >= v)
        .unwrap_or(10.0);
    (step * mag).ceil() as i64
}

/// A stacked bar chart of events per day by channel, laid out here so the page needs no
/// charting script.
pub(crate) fn chart(
    rows: &[cxm_store::DayChannelCount],
    days: u32,
    today: chrono::NaiveDate,
) -> Chart {
    let (width, height, left, top, bottom) = (900.0, 260.0, 56.0, 10.0, 24.0);
    let mut per_day: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for r in rows {
        *per_day
            .entry(r.day.clone())
            .or_default()
            .entry(r.channel.clone())
            .or_default() += r.events;
    }
    let max = nice_max(
        per_day
            .values()
            .map(|m| m.values().sum::<i64>())
            .max()
            .unwrap_or(0),
    );
    let plot_h = height - top - bottom;
    let slot = (width - left) / f64::from(days);
    let bar_width = (slot * 0.8).max(1.0);
    let channels: Vec<String> = cxm_domain::Channel::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .filter(|c| per_day.values().any(|m| m.contains_key(c)))
        .collect();
    let mut bars = vec![];
    if !per_day.is_empty() {
        for i in 0..days {
            let day = today - chrono::Duration::days(i64::from(days - 1 - i));
            let key = day.format("%Y-%m-%d").to_string();
            let x = left + f64::from(i) * slot + (slot - bar_width) / 2.0;
            let mut y = top + plot_h;
            let mut segments = vec![];
            if let Some(m) = per_day.get(&key) {
                for c in &channels {
                    if let Some(n) = m.get(c) {
                        let h = *n as f64 / max as f64 * plot_h;
                        y -= h;
                        segments.push(Segment {
                            channel: c.clone(),
                            events: *n,
                            y,
                            h,
                        });
                    }
                }
            }
            let label = (i % 5 == 0 || i == days - 1).then(|| day.format("%b %d").to_string());
            bars.push(Bar {
                day: key,
                label,
                anchor: if i == days - 1 { "end" } else { "middle" },
                x,
                segments,
            });
        }
    }
    let ticks = [0, max / 2, max]
        .into_iter()
        .map(|v| Tick {
            y: top + plot_h - v as f64 / max as f64 * plot_h,
            label: super::format::grouped(v as f64, 0),
        })
        .collect();
    Chart {
        width,
        height,
        left,
        top,
        bar_width,
        bars,
        ticks,
        channels,
    }
}

pub(crate) async fn data_page(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let p = match session(&st, &headers, "/settings/data").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let days = 30;
    let t = p.tenant_id.clone();
    let now = chrono::Utc::now();
    let o = match st
        .store
        .run(move |s| s.overview(&t, days, now.timestamp_millis()))
        .await
    {
        Ok(o) => o,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let window_events: i64 = o.by_day_channel.iter().map(|r| r.events).sum();
    let chart = chart(&o.by_day_channel, days, now.date_naive());
    st.pages.render("data.html", context! { title => "Data coming in", page => "data", user => user_ctx(&p), overview => o, chart => chart, days => days, window_events => window_events, tenant => p.tenant_id })
}
