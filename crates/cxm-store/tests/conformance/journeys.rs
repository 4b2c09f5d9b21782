//! Journey versions and the walked projections saved once per cursor.

use super::*;

pub(crate) fn journeys_are_versioned_and_progress_is_saved_once(s: &dyn Store) {
    use cxm_domain::journey_progress::{Outcome, Position, StageStats, Visit};
    let t = s.create_tenant("Acme").unwrap().id;
    s.append(&[req(&t, "k", &[
        json!({"type":"track","event":"Signed Up","userId":"u1","messageId":"a","timestamp":at(0)}),
        json!({"type":"track","event":"Page Viewed","userId":"u1","messageId":"b","timestamp":at(1)}),
        json!({"type":"track","event":"Feature Used","anonymousId":"anon-9","messageId":"c","timestamp":at(2)}),
        json!({"type":"track","event":"Feature Used","userId":"u1","messageId":"d","timestamp":at(90)}),
    ])]).unwrap();
    let p1 = profile_of(s, &t, "user_id:u1").id;
    let anon = profile_of(s, &t, "anonymous_id:anon-9").id;
    assert!(s.event_name_seen(&t, "Feature Used").unwrap());
    assert!(!s.event_name_seen(&t, "Featur Used").unwrap());

    let j = StoredJourney {
        journey_id: "onboarding".into(),
        version: 0,
        name: "Onboarding".into(),
        owner: "ada".into(),
        definition: "{}".into(),
        created_by: "test".into(),
        created_at_ms: 0,
    };
    assert_eq!(s.save_journey(&t, &j, false).unwrap(), 1);
    let names = vec!["Signed Up".to_string(), "Feature Used".to_string()];
    let evs = s.journey_events(&t, 0, i64::MAX, &names, 10).unwrap();
    let got: Vec<(&str, Option<&str>)> = evs
        .iter()
        .map(|e| (e.name.as_str(), e.profile_id.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("Signed Up", Some(p1.as_str())),
            ("Feature Used", Some(anon.as_str())),
            ("Feature Used", Some(p1.as_str()))
        ]
    );
    assert!(evs.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        s.journey_events(&t, evs[0].seq, i64::MAX, &names, 1)
            .unwrap()[0]
            .seq,
        evs[1].seq
    );

    let ms = |m: i64| (base() + Duration::minutes(m)).timestamp_millis();
    let pos = |stage, entered, done| Position {
        stage,
        entered_ms: ms(entered),
        done,
        last_contact_ms: ms(entered),
        last_channel: "web".into(),
        repeats: 0,
        switches: 0,
        unseen_switch_ms: None,
        context_seen: None,
    };
    let mut st = StageStats {
        entries: 1,
        ..StageStats::default()
    };
    let visit = Visit {
        stage: 0,
        entered_ms: ms(0),
        left_ms: ms(90),
        outcome: Outcome::Advanced,
        to: Some(1),
        repeats: 0,
        switches: 0,
    };
    st.close(&visit, Some(1.0), None);
    let progress = JourneyProgress {
        from: JourneyCursor::default(),
        to: JourneyCursor {
            event_seq: evs[2].seq,
            feedback_id: 0,
        },
        positions: vec![
            (p1.clone(), pos(1, 90, false)),
            (anon.clone(), pos(1, 2, false)),
        ],
        visits: vec![(p1.clone(), visit)],
        stats: vec![
            (0, st.clone()),
            (
                1,
                StageStats {
                    entries: 2,
                    ..StageStats::default()
                },
            ),
        ],
    };
    assert!(s
        .save_journey_progress(&t, "onboarding", 1, &progress)
        .unwrap());
    // the same pass again (another server, a retry) finds the cursor moved and changes nothing
    assert!(!s
        .save_journey_progress(&t, "onboarding", 1, &progress)
        .unwrap());
    assert_eq!(
        s.journey_cursor(&t, "onboarding", 1).unwrap().event_seq,
        evs[2].seq
    );
    let stats = s.journey_stats(&t, "onboarding", 1).unwrap();
    assert_eq!(stats[0], (0, st));
    assert_eq!(stats[1].1.entries, 2);
    assert_eq!(
        s.journey_positions(&t, "onboarding", 1, &[p1.clone(), "nobody".into()])
            .unwrap()[&p1],
        pos(1, 90, false)
    );
    // in stage 0 at minute 30 (an ended visit), in stage 1 at minute 100, nowhere before entering
    assert_eq!(
        s.journey_stage_at(
            &t,
            "onboarding",
            1,
            &[
                (p1.clone(), ms(30)),
                (p1.clone(), ms(100)),
                (anon.clone(), ms(1))
            ]
        )
        .unwrap(),
        [Some(0), Some(1), None]
    );
    // stalled: open in stage 1 and entered before minute 60: only the anonymous customer
    assert_eq!(
        s.journey_stalled(&t, "onboarding", 1, &[(1, ms(60)), (0, ms(60))])
            .unwrap(),
        [1, 0]
    );

    // a version whose stages are unchanged keeps the measurements
    assert_eq!(
        s.save_journey(
            &t,
            &StoredJourney {
                name: "Onboarding, renamed".into(),
                ..j.clone()
            },
            true
        )
        .unwrap(),
        2
    );
    assert_eq!(s.journey_stats(&t, "onboarding", 2).unwrap().len(), 2);
    assert_eq!(
        s.journey_cursor(&t, "onboarding", 2).unwrap().event_seq,
        evs[2].seq
    );
    assert_eq!(
        s.journey_stage_at(&t, "onboarding", 2, &[(p1.clone(), ms(30))])
            .unwrap(),
        [Some(0)]
    );
    let v3 = s
        .save_journey(
            &t,
            &StoredJourney {
                name: "Onboarding v3".into(),
                ..j.clone()
            },
            false,
        )
        .unwrap();
    assert_eq!(v3, 3);
    assert_eq!(
        s.list_journeys(&t)
            .unwrap()
            .iter()
            .map(|j| (j.version, j.name.as_str()))
            .collect::<Vec<_>>(),
        [(3, "Onboarding v3")]
    );
    assert_eq!(s.journey_history(&t, "onboarding").unwrap().len(), 3);
    assert_eq!(
        s.journey(&t, "onboarding", Some(1)).unwrap().unwrap().name,
        "Onboarding"
    );
    // a new version is measured from scratch, and a late pass for an old one is refused
    assert!(s.journey_stats(&t, "onboarding", 2).unwrap().is_empty());
    assert!(s.journey_stats(&t, "onboarding", 3).unwrap().is_empty());
    assert_eq!(
        s.journey_cursor(&t, "onboarding", 3).unwrap(),
        JourneyCursor::default()
    );
    assert!(!s
        .save_journey_progress(
            &t,
            "onboarding",
            2,
            &JourneyProgress {
                from: progress.to,
                ..progress.clone()
            }
        )
        .unwrap());
    let other = s.create_tenant("Other").unwrap().id;
    assert!(s.list_journeys(&other).unwrap().is_empty());
    assert!(s.journey(&other, "onboarding", None).unwrap().is_none());
}
