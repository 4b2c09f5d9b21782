//! Answers, their rollups, surveys and links, and answers linked to accounts.

use super::*;

pub(crate) fn answer(v: Value) -> FeedbackRow {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
    FeedbackRow {
        answer: cxm_domain::feedback::parse_answer(&v, now).unwrap(),
        sentiment: None,
        cues: None,
    }
}

pub(crate) fn feedback_is_idempotent_and_rolled_up(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    let rows: Vec<FeedbackRow> = [(9, "email", "2026-11-01"), (10, "email", "2026-11-01"), (3, "chat", "2026-11-01"), (7, "chat", "2026-11-02")]
        .iter()
        .enumerate()
        .map(|(i, (score, ch, day))| answer(json!({"response_id": format!("r{i}"), "question": "nps", "type": "nps", "value": score, "channel": ch, "collected_at": format!("{day}T10:00:00Z")})))
        .chain([answer(json!({"response_id": "r0", "question": "why", "type": "text", "value": "slow"}))])
        .collect();
    assert_eq!(
        s.insert_feedback(&t, &rows).unwrap(),
        FeedbackOutcome {
            accepted: 5,
            duplicates: 0
        }
    );
    assert_eq!(
        s.insert_feedback(&t, &rows[..2]).unwrap(),
        FeedbackOutcome {
            accepted: 0,
            duplicates: 2
        },
        "re-import is a no-op"
    );
    let all = s
        .feedback_histogram(&t, "nps", "2026-11-01", "2026-11-30", None)
        .unwrap();
    assert_eq!(all.iter().map(|r| r.answers).sum::<u64>(), 4);
    let by = s
        .feedback_histogram(&t, "nps", "2026-11-01", "2026-11-01", Some(Slice::Channel))
        .unwrap();
    let rows: Vec<(&str, i64, u64)> = by
        .iter()
        .map(|r| (r.group.as_str(), r.score, r.answers))
        .collect();
    assert_eq!(rows, [("chat", 3, 1), ("email", 9, 1), ("email", 10, 1)]);
    s.rebuild(Some(&t)).unwrap();
    assert_eq!(
        s.feedback_histogram(&t, "nps", "2026-11-01", "2026-11-30", None)
            .unwrap(),
        all,
        "the rollup is rebuilt from the answers"
    );
    let texts = s.text_answers(&t, 0, i64::MAX, 10).unwrap();
    assert_eq!(texts.len(), 1);
    assert_eq!(
        (
            texts[0].response_id.as_str(),
            texts[0].text.as_str(),
            texts[0].nps
        ),
        ("r0", "slow", Some(9))
    );
    assert_eq!(s.nps_answers(&t, 0, i64::MAX).unwrap().len(), 4);
}

pub(crate) fn surveys_are_versioned_and_links_count(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    assert_eq!(
        s.save_survey(&t, "post-ticket", "Post ticket", r#"{"v":1}"#)
            .unwrap(),
        1
    );
    assert_eq!(
        s.save_survey(&t, "post-ticket", "Post ticket v2", r#"{"v":2}"#)
            .unwrap(),
        2
    );
    assert_eq!(
        s.survey(&t, "post-ticket", None).unwrap().unwrap(),
        (2, r#"{"v":2}"#.to_string())
    );
    assert_eq!(s.survey(&t, "post-ticket", Some(1)).unwrap().unwrap().0, 1);
    assert!(s.survey(&t, "nope", None).unwrap().is_none());
    let link = SurveyLink {
        tenant_id: t.clone(),
        survey_id: "post-ticket".into(),
        version: 2,
        identifier: Some("user_id:u1".into()),
        channel: "email".into(),
        displayed_at_ms: None,
        responded_at_ms: None,
        follow_ups: 0,
    };
    s.create_link("h1", &link).unwrap();
    s.create_link("h2", &link).unwrap();
    s.mark_link("h1", LinkEvent::Displayed).unwrap();
    s.mark_link("h1", LinkEvent::Responded).unwrap();
    s.mark_link("h1", LinkEvent::FollowUpAnswered).unwrap();
    s.mark_link("h2", LinkEvent::Displayed).unwrap();
    let l = s.link("h1").unwrap().unwrap();
    assert!(l.displayed_at_ms.is_some() && l.responded_at_ms.is_some());
    assert_eq!(l.follow_ups, 1);
    let list = s.list_surveys(&t).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (
            list[0].version,
            list[0].name.as_str(),
            list[0].links,
            list[0].displays,
            list[0].responses
        ),
        (2, "Post ticket v2", 2, 2, 1)
    );
    assert!(s
        .list_surveys(&s.create_tenant("Other").unwrap().id)
        .unwrap()
        .is_empty());
}

pub(crate) fn answers_link_to_accounts_and_slice_by_tier(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    s.append(&[req(&t, "k", &[
        json!({"type": "identify", "userId": "u1", "traits": {"email": "ada@example.com"}, "timestamp": at(0), "messageId": "m1"}),
        json!({"type": "group", "userId": "u1", "groupId": "acct-1", "traits": {"plan": "enterprise", "arr": 180000}, "timestamp": at(1), "messageId": "m2"}),
    ])])
    .unwrap();
    let rows = vec![
        answer(
            json!({"response_id": "r1", "question": "nps", "type": "nps", "value": 3, "identifier": "email:ada@example.com", "collected_at": "2026-11-02T10:00:00Z"}),
        ),
        answer(
            json!({"response_id": "r1", "question": "why", "type": "text", "value": "slow", "identifier": "email:ada@example.com", "collected_at": "2026-11-02T10:00:00Z"}),
        ),
        answer(
            json!({"response_id": "r2", "question": "nps", "type": "nps", "value": 10, "collected_at": "2026-11-02T10:00:00Z"}),
        ),
    ];
    s.insert_feedback(&t, &rows).unwrap();
    let texts = s.text_answers(&t, 0, i64::MAX, 10).unwrap();
    assert_eq!(
        texts[0].account.as_deref(),
        Some("acct-1"),
        "the identifier's account is found through the graph"
    );
    let by_tier = s
        .feedback_histogram(&t, "nps", "2026-11-01", "2026-11-30", Some(Slice::Tier))
        .unwrap();
    let got: Vec<(&str, i64)> = by_tier
        .iter()
        .map(|r| (r.group.as_str(), r.score))
        .collect();
    assert_eq!(
        got,
        [("enterprise", 3)],
        "answers without an account have no tier"
    );
    // the customer's page reads her answers with their text, newest first, and none of
    // anyone else's
    let ada = profile_of(s, &t, "email:ada@example.com").id;
    let mine = s.profile_answers(&t, &ada, 10).unwrap();
    let got: Vec<(&str, Option<i64>, Option<&str>)> = mine
        .iter()
        .map(|a| (a.field_type.as_str(), a.score, a.text.as_deref()))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.contains(&("nps", Some(3), None)) && got.contains(&("text", None, Some("slow"))),
        "{got:?}"
    );
    assert!(s.profile_answers(&t, "p_nobody", 10).unwrap().is_empty());

    // the responses list: filters combine, text matches ignoring case and takes % and _
    // literally, and pages follow the id
    let q = |f: fn(&mut cxm_store::AnswerQuery)| {
        let mut q = cxm_store::AnswerQuery {
            from_ms: 0,
            to_ms: i64::MAX,
            limit: 10,
            ..Default::default()
        };
        f(&mut q);
        s.list_answers(&t, &q).unwrap()
    };
    let every = q(|_| {});
    assert_eq!(every.len(), 3, "{every:?}");
    assert!(every.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let texts = q(|q| q.field_type = Some("text".into()));
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].text.as_deref(), Some("slow"));
    assert_eq!(texts[0].profile_id.as_deref(), Some(ada.as_str()));
    assert_eq!(texts[0].account.as_deref(), Some("acct-1"));
    assert_eq!(q(|q| q.text = Some("SLO".into())).len(), 1);
    assert!(
        q(|q| q.text = Some("s%w".into())).is_empty(),
        "% is literal"
    );
    assert!(q(|q| q.channel = Some("nowhere".into())).is_empty());
    let first = q(|q| q.limit = 2);
    let rest = s
        .list_answers(
            &t,
            &cxm_store::AnswerQuery {
                from_ms: 0,
                to_ms: i64::MAX,
                before_id: Some(first[1].id),
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((first.len(), rest.len()), (2, 1));
    assert!(rest.iter().all(|r| r.id < first[1].id));
    s.rebuild(Some(&t)).unwrap();
    assert_eq!(
        s.feedback_histogram(&t, "nps", "2026-11-01", "2026-11-30", Some(Slice::Tier))
            .unwrap(),
        by_tier
    );
}
