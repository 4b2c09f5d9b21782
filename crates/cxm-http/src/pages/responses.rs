//! Every answer, one row each: the responses list with the shared date range, filters by
//! type, survey, channel and words, keyset paging, and the same rows as CSV.

use super::*;
use cxm_store::{AnswerQuery, ListedAnswer};

#[derive(Deserialize, Default)]
pub(crate) struct ResponsesQuery {
    #[serde(flatten)]
    range: range::RangeQuery,
    #[serde(rename = "type")]
    field_type: Option<String>,
    survey: Option<String>,
    channel: Option<String>,
    q: Option<String>,
    /// A string, not a number: a flattened query reads every value as text.
    before: Option<String>,
}

const PER_PAGE: u32 = 50;
const CSV_CAP: usize = 10_000;
const TYPES: &[&str] = &["nps", "csat", "ces", "text", "choice", "rating"];

fn set(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

impl ResponsesQuery {
    fn store_query(&self, limit: u32) -> Result<(AnswerQuery, range::Range), ApiError> {
        let r = self.range.range(90)?;
        let field_type = set(&self.field_type);
        if let Some(t) = &field_type {
            if !TYPES.contains(&t.as_str()) {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("type must be one of {}, not {t:?}", TYPES.join(", ")),
                ));
            }
        }
        let ms = |d: chrono::NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .map_or(0, |t| t.and_utc().timestamp_millis())
        };
        let before_id = match set(&self.before) {
            Some(b) => Some(b.parse::<i64>().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("before must be an answer id, not {b:?}"),
                )
            })?),
            None => None,
        };
        Ok((
            AnswerQuery {
                from_ms: ms(r.from),
                to_ms: ms(r.to + chrono::Duration::days(1)),
                field_type,
                survey_id: set(&self.survey),
                channel: set(&self.channel),
                text: set(&self.q),
                before_id,
                limit,
            },
            r,
        ))
    }

    /// The filters (not the page) as a query string.
    fn query(&self, r: &range::Range) -> String {
        let filters = filter_query(&[
            ("type", &self.field_type),
            ("survey", &self.survey),
            ("channel", &self.channel),
            ("q", &self.q),
        ]);
        if filters.is_empty() {
            r.query()
        } else {
            format!("{}&{filters}", r.query())
        }
    }
}

pub(crate) async fn responses_page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(rq): Query<ResponsesQuery>,
) -> Response {
    let p = match session(&st, &headers, "/responses").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (q, range) = match rq.store_query(PER_PAGE) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let t = p.tenant_id.clone();
    let rows = match st.store.run(move |s| s.list_answers(&t, &q)).await {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let older = (rows.len() == PER_PAGE as usize)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    st.pages.render(
        "responses.html",
        context! { title => "Responses", page => "responses", user => user_ctx(&p), answers => rows,
            range => range.ctx(), query => rq.query(&range), older => older, paged => rq.before.is_some(), types => TYPES,
            filter => context! { type => set(&rq.field_type), survey => set(&rq.survey), channel => set(&rq.channel), q => set(&rq.q) } },
    )
}

pub(crate) async fn responses_csv(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(rq): Query<ResponsesQuery>,
) -> Response {
    let p = match session(&st, &headers, "/responses").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (mut q, _) = match rq.store_query(1000) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    q.before_id = None;
    let t = p.tenant_id.clone();
    let all = match st
        .store
        .run(move |s| {
            let mut all: Vec<ListedAnswer> = vec![];
            loop {
                let page = s.list_answers(&t, &q)?;
                let full = page.len() == q.limit as usize;
                q.before_id = page.last().map(|a| a.id);
                all.extend(page);
                if !full || all.len() >= CSV_CAP {
                    break;
                }
            }
            all.truncate(CSV_CAP);
            Ok(all)
        })
        .await
    {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|a| {
            vec![
                a.response_id.clone(),
                fmt_ms(a.at_ms),
                a.survey_id.clone(),
                a.channel.clone(),
                a.question.clone(),
                a.field_type.clone(),
                a.score.map_or(String::new(), |s| s.to_string()),
                a.text.clone().unwrap_or_default(),
                a.sentiment.map_or(String::new(), |s| s.to_string()),
                a.profile_id.clone().unwrap_or_default(),
                a.account.clone().unwrap_or_default(),
            ]
        })
        .collect();
    csv::download(
        "responses",
        &[
            "response_id",
            "collected_utc",
            "survey",
            "channel",
            "question",
            "type",
            "score",
            "text",
            "cx_sentiment",
            "profile_id",
            "account",
        ],
        &rows,
    )
}
