//! The theme registry, assignments and their rollup.

use super::*;

pub(crate) fn themes_persist_and_count(s: &dyn Store) {
    let t = s.create_tenant("Acme").unwrap().id;
    assert_eq!(s.load_themes(&t).unwrap().version, 0);
    assert!(s.themed_tenants().unwrap().is_empty());
    let v = s
        .save_themes(
            &t,
            &ThemeSave {
                discovery: Some(("{\"idf\":{}}".into(), 0.1)),
                themes: vec![
                    ("a".into(), "{\"id\":\"a\"}".into()),
                    ("b".into(), "{}".into()),
                ],
                edit: None,
            },
        )
        .unwrap();
    assert_eq!(v, 1);
    let v = s
        .save_themes(
            &t,
            &ThemeSave {
                discovery: None,
                themes: vec![("a".into(), "{\"renamed\":1}".into())],
                edit: Some(ThemeEdit {
                    theme_id: "a".into(),
                    kind: "rename".into(),
                    detail: "Billing".into(),
                    actor: "ada".into(),
                    created_at_ms: 0,
                }),
            },
        )
        .unwrap();
    assert_eq!(v, 1, "an edit is not a discovery");
    let state = s.load_themes(&t).unwrap();
    assert_eq!(
        (state.version, state.themes.len(), state.noise_below),
        (1, 2, 0.1)
    );
    assert_eq!(state.themes[0], "{\"renamed\":1}");
    assert_eq!(s.theme_edits(&t, 10).unwrap()[0].detail, "Billing");
    assert_eq!(s.themed_tenants().unwrap(), vec![t.clone()]);

    s.append(&[req(&t, "k", &[json!({"type": "group", "userId": "u1", "groupId": "acct-1", "traits": {"arr": "5000"}, "timestamp": at(0), "messageId": "m1"})])]).unwrap();
    let scores = [10, 9, 2, 8];
    let rows: Vec<FeedbackRow> = (0..4)
        .flat_map(|i| {
            [
                answer(json!({"response_id": format!("r{i}"), "question": "nps", "type": "nps", "value": scores[i], "collected_at": "2026-11-02T10:00:00Z"})),
                answer(json!({"response_id": format!("r{i}"), "question": "why", "type": "text", "value": format!("text {i}"), "account": "acct-1", "collected_at": "2026-11-02T10:00:00Z"})),
            ]
        })
        .collect();
    s.insert_feedback(&t, &rows).unwrap();
    let texts = s.text_answers_after(&t, 0, 10).unwrap();
    assert_eq!(texts.len(), 4);
    assert!(texts.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert_eq!(s.theme_watermark(&t).unwrap(), 0);
    let assign = |a: &TextAnswer, theme: &str| ThemeAssignment {
        feedback_id: a.id,
        theme_id: theme.into(),
        day: "2026-11-02".into(),
        response_id: a.response_id.clone(),
        sentiment: Some(0.5),
        account: a.account.clone(),
    };
    s.assign_themes(
        &t,
        &[
            assign(&texts[0], "a"),
            assign(&texts[1], "a"),
            assign(&texts[2], "b"),
        ],
    )
    .unwrap();
    assert_eq!(s.theme_watermark(&t).unwrap(), texts[2].id);
    assert_eq!(s.text_answers_after(&t, texts[2].id, 10).unwrap().len(), 1);
    // reassigning replaces
    s.assign_themes(&t, &[assign(&texts[1], "b")]).unwrap();
    assert!(
        s.theme_days(&t, "2026-11-01", "2026-11-30")
            .unwrap()
            .is_empty(),
        "the rollup waits for a refresh"
    );
    s.refresh_theme_rollup(&t).unwrap();
    let days = s.theme_days(&t, "2026-11-01", "2026-11-30").unwrap();
    let got: Vec<(&str, u64, f64)> = days
        .iter()
        .map(|d| (d.theme_id.as_str(), d.answers, d.sentiment_sum))
        .collect();
    assert_eq!(got, [("a", 1, 0.5), ("b", 2, 1.0)]);
    let mut nps: Vec<(String, i64, u64)> = s
        .theme_nps(&t, "2026-11-01", "2026-11-30")
        .unwrap()
        .into_iter()
        .map(|n| (n.theme_id, n.score, n.responses))
        .collect();
    nps.sort();
    assert_eq!(
        nps,
        [("a".into(), 10, 1), ("b".into(), 0, 1), ("b".into(), 10, 1)]
    );
    let accts = s.theme_accounts(&t, "2026-11-01", "2026-11-30").unwrap();
    assert_eq!(accts.len(), 2, "one row per theme and account");
    assert_eq!(
        arr_of(&serde_json::from_str(&accts[0].traits).unwrap()),
        Some(5000.0)
    );
    // placing new answers counts them at once; placing again is a no-op
    s.place_themes(&t, &[assign(&texts[3], "a"), assign(&texts[3], "a")])
        .unwrap();
    s.place_themes(&t, &[assign(&texts[0], "b")]).unwrap();
    let days = s.theme_days(&t, "2026-11-01", "2026-11-30").unwrap();
    let got: Vec<(&str, u64)> = days
        .iter()
        .map(|d| (d.theme_id.as_str(), d.answers))
        .collect();
    assert_eq!(
        got,
        [("a", 2), ("b", 2)],
        "an answer that already has a theme is not placed again"
    );
    let mut nps: Vec<(String, i64, u64)> = s
        .theme_nps(&t, "2026-11-01", "2026-11-30")
        .unwrap()
        .into_iter()
        .map(|n| (n.theme_id, n.score, n.responses))
        .collect();
    nps.sort();
    assert_eq!(
        nps,
        [
            ("a".into(), 7, 1),
            ("a".into(), 10, 1),
            ("b".into(), 0, 1),
            ("b".into(), 10, 1)
        ]
    );
    s.refresh_theme_rollup(&t).unwrap();
    assert_eq!(
        s.theme_days(&t, "2026-11-01", "2026-11-30").unwrap(),
        days,
        "increments agree with a rebuild"
    );
    let members = s.theme_members(&t, &["b".into()], 10).unwrap();
    assert_eq!(
        members.iter().map(|m| m.id).collect::<Vec<_>>(),
        [texts[1].id, texts[2].id]
    );
    assert_eq!(s.theme_members(&t, &["a".into()], 10).unwrap().len(), 2);
    assert!(s
        .theme_days(&t, "2026-12-01", "2026-12-30")
        .unwrap()
        .is_empty());
}
