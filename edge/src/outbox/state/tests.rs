//! The outbox bookkeeping core, by example and against a model.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

const S: Duration = Duration::from_secs(1);

fn policy(window: usize) -> OutboxPolicy {
    OutboxPolicy {
        max_in_flight: window,
        resend_timeout: 10 * S,
        resend_timeout_max: 40 * S,
    }
}

fn fresh(window: usize) -> OutboxState {
    OutboxState::new(policy(window), 0, [])
}

#[test]
fn nothing_is_published_while_the_link_is_down() {
    let mut o = fresh(4);
    assert!(o.stored(1, S).is_empty());
    assert!(o.stored(2, S).is_empty());
    assert_eq!(o.depth(), 2);
    assert_eq!(o.link_up(2 * S), [1, 2]);
}

#[test]
fn a_stored_event_is_published_at_once_when_the_link_is_up() {
    let mut o = fresh(4);
    o.link_up(S);
    assert_eq!(o.stored(1, S), [1]);
    assert_eq!(o.stage(1), Some(Stage::Sent { at: S }));
}

#[test]
fn the_window_bounds_publishes_without_a_broker_puback() {
    let mut o = fresh(2);
    for seq in 1..=5 {
        o.stored(seq, S);
    }
    assert_eq!(o.link_up(S), [1, 2]);
    assert_eq!(o.in_flight(), 2);
    assert_eq!(o.pub_acked(1, S), [3], "a PubAck frees one slot");
    assert_eq!(o.pub_acked(2, S), [4]);
    assert_eq!(o.in_flight(), 2);
}

#[test]
fn a_broker_puback_only_marks_an_event_in_flight() {
    let mut o = fresh(4);
    o.link_up(S);
    o.stored(1, S);
    o.pub_acked(1, S);
    assert_eq!(o.stage(1), Some(Stage::Delivered { at: S }));
    assert_eq!(o.depth(), 1, "still stored until the cloud confirms");
}

#[test]
fn a_cloud_ack_removes_everything_up_to_its_seq_and_only_once() {
    let mut o = fresh(8);
    o.link_up(S);
    for seq in 1..=4 {
        o.stored(seq, S);
    }
    o.pub_acked(1, S);
    let (delete, _) = o.confirmed(3, AckSource::Mqtt, S).unwrap();
    assert_eq!(delete, Some(3));
    assert_eq!(o.depth(), 1);
    assert_eq!(o.in_flight(), 1, "seq 4 is still without PubAck");
    assert_eq!(o.confirmed_seq(), 3);
    assert_eq!(
        o.confirmed(3, AckSource::Mqtt, S).unwrap().0,
        None,
        "a repeated ack changes nothing"
    );
    assert_eq!(
        o.confirmed(2, AckSource::Mqtt, S).unwrap().0,
        None,
        "an older ack changes nothing"
    );
}

#[test]
fn a_confirmation_frees_window_slots_of_events_without_puback() {
    let mut o = fresh(1);
    o.stored(1, S);
    o.stored(2, S);
    assert_eq!(o.link_up(S), [1]);
    let (_, publish) = o.confirmed(1, AckSource::Mqtt, S).unwrap();
    assert_eq!(publish, [2]);
}

#[test]
fn a_reconnect_resends_every_unconfirmed_event_in_order() {
    let mut o = fresh(8);
    o.link_up(S);
    for seq in 1..=3 {
        o.stored(seq, S);
    }
    o.pub_acked(1, S);
    o.pub_acked(2, S);
    o.link_down();
    assert_eq!(o.in_flight(), 0);
    assert!(o.stored(4, 2 * S).is_empty());
    assert_eq!(o.link_up(3 * S), [1, 2, 3, 4]);
}

#[test]
fn an_unconfirmed_event_is_resent_after_its_timeout_which_then_doubles() {
    let mut o = fresh(8);
    o.link_up(Duration::ZERO);
    o.stored(1, Duration::ZERO);
    o.pub_acked(1, Duration::ZERO);
    assert!(o.tick(9 * S).is_empty());
    assert_eq!(o.tick(10 * S), [1], "first timeout: 10 s");
    o.pub_acked(1, 10 * S);
    assert!(o.tick(29 * S).is_empty());
    assert_eq!(o.tick(30 * S), [1], "second timeout: 20 s");
    assert_eq!(o.tick(70 * S), [1], "third: 40 s");
    assert_eq!(o.tick(110 * S), [1], "capped at 40 s");
}

#[test]
fn a_failed_handoff_is_retried_on_the_next_tick() {
    let mut o = fresh(8);
    o.link_up(S);
    o.stored(1, S);
    o.publish_failed(1);
    assert_eq!(o.stage(1), Some(Stage::Queued));
    assert_eq!(o.in_flight(), 0);
    assert_eq!(o.tick(S), [1]);
}

#[test]
fn a_puback_for_a_queued_resend_spares_sending_it_again() {
    let mut o = fresh(1);
    o.stored(1, S);
    o.stored(2, S);
    o.link_up(S);
    // rumqttc replays an old-session publish of seq 2 and the broker acks it.
    assert!(o.pub_acked(2, S).is_empty());
    assert_eq!(o.stage(2), Some(Stage::Delivered { at: S }));
    assert!(o.pub_acked(1, S).is_empty(), "2 is not sent again");
}

#[test]
fn a_restart_reloads_pending_events_as_queued_above_the_confirmed_seq() {
    let mut o = OutboxState::new(policy(8), 5, [4, 6, 7]);
    assert_eq!(o.depth(), 2, "seq 4 was already confirmed");
    assert_eq!(o.link_up(S), [6, 7]);
}

#[derive(Debug, Clone)]
enum Action {
    Store,
    LinkUp,
    LinkDown,
    PubAck(usize),
    PublishFailed(usize),
    Confirm(u64),
    Advance(u64),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => Just(Action::Store),
        1 => Just(Action::LinkUp),
        1 => Just(Action::LinkDown),
        4 => (0usize..16).prop_map(Action::PubAck),
        1 => (0usize..16).prop_map(Action::PublishFailed),
        2 => (0u64..40).prop_map(Action::Confirm),
        2 => (0u64..30).prop_map(Action::Advance),
    ]
}

proptest! {
    /// The model: the set of stored seqs above the highest confirmation; a link flag; the set of seqs
    /// handed to the uplink and not yet acknowledged.
    #[test]
    fn the_core_never_loses_an_event_and_respects_the_window(
        actions in proptest::collection::vec(action(), 1..200),
        window in 1usize..5,
    ) {
        let mut o = fresh(window);
        let mut next_seq = 1u64;
        let mut stored: BTreeSet<u64> = BTreeSet::new();
        let mut confirmed = 0u64;
        let mut link = false;
        let mut sent: BTreeSet<u64> = BTreeSet::new();
        let mut now = Duration::ZERO;
        for a in actions {
            let published = match a {
                Action::Store => {
                    stored.insert(next_seq);
                    next_seq += 1;
                    o.stored(next_seq - 1, now)
                }
                Action::LinkUp => { link = true; sent.clear(); o.link_up(now) }
                Action::LinkDown => { link = false; sent.clear(); o.link_down(); vec![] }
                Action::PubAck(i) => match sent.iter().nth(i).copied() {
                    Some(seq) => { sent.remove(&seq); o.pub_acked(seq, now) }
                    None => vec![],
                },
                Action::PublishFailed(i) => match sent.iter().nth(i).copied() {
                    Some(seq) => { sent.remove(&seq); o.publish_failed(seq); vec![] }
                    None => vec![],
                },
                Action::Confirm(n) if n >= next_seq => {
                    // A forged MQTT ack above the highest seq issued: refused, nothing changes.
                    let refused = o.confirmed(n, AckSource::Mqtt, now);
                    prop_assert_eq!(refused, Err(RefusedAck { acked_seq: n, highest_issued: next_seq - 1 }));
                    prop_assert_eq!(o.confirmed_seq(), confirmed);
                    vec![]
                }
                Action::Confirm(n) => {
                    let (delete, publish) = o.confirmed(n, AckSource::Mqtt, now).unwrap();
                    prop_assert_eq!(delete.is_some(), n > confirmed);
                    confirmed = confirmed.max(n);
                    stored.retain(|s| *s > confirmed);
                    sent.retain(|s| *s > confirmed);
                    publish
                }
                Action::Advance(secs) => { now += Duration::from_secs(secs); o.tick(now) }
            };
            if !link {
                prop_assert!(published.is_empty(), "published while the link was down");
            }
            for seq in &published {
                prop_assert!(stored.contains(seq), "published {} which is not stored", seq);
            }
            let mut sorted = published.clone();
            sorted.sort();
            prop_assert_eq!(&sorted, &published, "publishes go oldest first");
            sent.extend(published);
            prop_assert_eq!(o.depth(), stored.len() as u64, "every stored event is kept");
            prop_assert!(o.in_flight() <= window);
            prop_assert_eq!(o.in_flight(), (1..next_seq)
                .filter(|s| matches!(o.stage(*s), Some(Stage::Sent { .. })))
                .count());
        }
        // Liveness: with the link up and every publish acknowledged, each stored event goes out.
        let mut out: BTreeSet<u64> = o.link_up(now).into_iter().collect();
        let mut frontier: Vec<u64> = out.iter().copied().collect();
        while let Some(seq) = frontier.pop() {
            for s in o.pub_acked(seq, now) {
                out.insert(s);
                frontier.push(s);
            }
        }
        prop_assert_eq!(out, stored);
    }
}

// ---- bulk drain over HTTP ----

fn draining(window: usize, threshold: u64, batch: usize, stored: u64) -> OutboxState {
    let mut o = OutboxState::new(policy(window), 0, 1..=stored);
    o.enable_bulk(BulkPolicy { threshold, batch });
    o
}

#[test]
fn without_bulk_enabled_no_batch_is_ever_made() {
    let mut o = OutboxState::new(policy(4), 0, 1..=100);
    assert_eq!(o.link_up(S), [1, 2, 3, 4]);
    assert_eq!(o.next_bulk_batch(S), None);
    assert!(!o.is_draining());
}

#[test]
fn a_small_backlog_goes_over_mqtt_only() {
    let mut o = draining(4, 10, 5, 10);
    assert_eq!(o.next_bulk_batch(S), None);
    assert_eq!(o.link_up(S), [1, 2, 3, 4]);
    assert!(!o.is_draining());
}

#[test]
fn a_large_backlog_goes_over_http_oldest_first_in_batches() {
    let mut o = draining(4, 10, 5, 20);
    assert!(o.link_up(S).is_empty(), "the old events wait for HTTP");
    assert!(o.is_draining());
    assert_eq!(o.next_bulk_batch(S), Some(vec![1, 2, 3, 4, 5]));
    assert_eq!(o.stage(1), Some(Stage::Bulk));
    assert_eq!(o.next_bulk_batch(S), None, "one batch at a time");
    let (delete, _) = o.bulk_answered(5, S);
    assert_eq!(delete, Some(5));
    assert_eq!(o.next_bulk_batch(S), Some(vec![6, 7, 8, 9, 10]));
}

#[test]
fn a_drain_runs_even_while_the_mqtt_link_is_down() {
    let mut o = draining(4, 10, 5, 20);
    assert_eq!(o.next_bulk_batch(S), Some(vec![1, 2, 3, 4, 5]));
}

#[test]
fn live_events_above_the_drain_mark_go_over_mqtt_during_a_drain() {
    let mut o = draining(4, 10, 5, 20);
    o.link_up(S);
    o.next_bulk_batch(S);
    assert_eq!(o.stored(21, S), [21]);
    assert_eq!(o.stage(21), Some(Stage::Sent { at: S }));
}

#[test]
fn an_event_in_an_http_batch_is_not_published_over_mqtt_even_after_a_reconnect() {
    let mut o = draining(100, 10, 5, 20);
    let batch = o.next_bulk_batch(S).unwrap();
    let published = o.link_up(S);
    assert!(published.iter().all(|seq| !batch.contains(seq)));
    assert!(o.tick(100 * S).iter().all(|seq| !batch.contains(seq)));
    assert_eq!(o.stage(1), Some(Stage::Bulk));
}

#[test]
fn an_event_in_the_mqtt_window_is_not_put_in_an_http_batch() {
    let mut o = draining(4, 10, 5, 20);
    o.link_up(S);
    assert_eq!(
        o.bulk_failed(S, 10 * S),
        [1, 2, 3, 4],
        "the window takes old events while the API waits"
    );
    assert_eq!(o.next_bulk_batch(20 * S), Some(vec![5, 6, 7, 8, 9]));
}

#[test]
fn a_batch_acked_seq_confirms_like_a_device_ack() {
    let mut o = draining(4, 10, 5, 20);
    o.next_bulk_batch(S);
    assert_eq!(o.bulk_answered(3, S).0, Some(3));
    assert_eq!(o.confirmed_seq(), 3);
    assert_eq!(o.depth(), 17);
    assert_eq!(
        o.stage(4),
        Some(Stage::Queued),
        "what the answer did not confirm is queued again"
    );
    assert_eq!(o.next_bulk_batch(S), Some(vec![4, 5, 6, 7, 8]));
}

#[test]
fn an_old_acked_seq_in_an_answer_deletes_nothing_and_requeues_the_batch() {
    let mut o = OutboxState::new(policy(4), 5, 6..=30);
    o.enable_bulk(BulkPolicy {
        threshold: 10,
        batch: 5,
    });
    o.next_bulk_batch(S);
    assert_eq!(o.bulk_answered(2, S).0, None);
    assert_eq!(o.stage(6), Some(Stage::Queued));
}

#[test]
fn a_failed_request_puts_the_batch_back_and_waits_the_retry_delay() {
    let mut o = draining(4, 10, 5, 20);
    o.next_bulk_batch(S);
    o.bulk_failed(S, 2 * S);
    assert_eq!(o.stage(1), Some(Stage::Queued));
    assert_eq!(o.next_bulk_batch(2 * S), None, "still waiting");
    assert_eq!(o.next_bulk_batch(3 * S), Some(vec![1, 2, 3, 4, 5]));
}

#[test]
fn a_batch_refused_as_too_large_is_sent_again_in_halves() {
    let mut o = draining(4, 10, 8, 20);
    assert_eq!(o.next_bulk_batch(S).unwrap().len(), 8);
    assert_eq!(o.bulk_too_large(), Some(4));
    assert_eq!(o.next_bulk_batch(S), Some(vec![1, 2, 3, 4]));
}

#[test]
fn a_single_event_refused_as_too_large_is_handled_as_a_failure() {
    let mut o = draining(4, 10, 1, 20);
    o.next_bulk_batch(S);
    assert_eq!(o.bulk_too_large(), None);
    assert_eq!(o.stage(1), Some(Stage::Queued));
}

#[test]
fn a_refused_token_turns_the_drain_off_and_everything_goes_over_mqtt() {
    let mut o = draining(4, 10, 5, 20);
    o.link_up(S);
    o.next_bulk_batch(S);
    assert_eq!(o.bulk_disabled(S), [1, 2, 3, 4]);
    assert!(!o.is_draining());
    assert_eq!(o.next_bulk_batch(100 * S), None);
}

#[test]
fn a_device_ack_over_mqtt_also_confirms_events_of_the_batch_in_flight() {
    let mut o = draining(4, 10, 5, 20);
    o.next_bulk_batch(S);
    o.confirmed(3, AckSource::Mqtt, S).unwrap();
    let (delete, _) = o.bulk_answered(5, S);
    assert_eq!(delete, Some(5));
    assert_eq!(o.depth(), 15);
}

#[test]
fn the_drain_ends_when_everything_up_to_its_mark_is_confirmed() {
    let mut o = draining(4, 10, 100, 20);
    o.link_up(S);
    assert_eq!(o.stored(21, S), [21]);
    o.next_bulk_batch(S);
    let (_, published) = o.bulk_answered(20, S);
    assert!(!o.is_draining());
    assert!(published.is_empty(), "21 is already in the window");
    assert_eq!(o.stored(22, S), [22], "below the threshold, MQTT only");
    assert_eq!(o.next_bulk_batch(S), None);
}

#[test]
fn a_new_drain_starts_when_the_backlog_grows_past_the_threshold_again() {
    let mut o = draining(4, 3, 100, 0);
    for seq in 1..=3 {
        o.stored(seq, S);
    }
    assert!(!o.is_draining());
    o.stored(4, S);
    assert!(o.is_draining());
    assert_eq!(o.next_bulk_batch(S), Some(vec![1, 2, 3, 4]));
}

#[derive(Debug, Clone)]
enum BulkAction {
    Mqtt(Action),
    Batch,
    Answer(u64),
    Fail(u64),
    Disable,
}

fn bulk_action() -> impl Strategy<Value = BulkAction> {
    prop_oneof![
        8 => action().prop_map(BulkAction::Mqtt),
        3 => Just(BulkAction::Batch),
        2 => (0u64..40).prop_map(BulkAction::Answer),
        1 => (0u64..5).prop_map(BulkAction::Fail),
        1 => Just(BulkAction::Disable),
    ]
}

proptest! {
    /// With the drain on: no event is in the HTTP batch and with MQTT at once, batches are oldest
    /// first and bounded, answers confirm like acks, and nothing is lost.
    #[test]
    fn with_the_drain_on_no_event_goes_both_ways_at_once_and_none_is_lost(
        actions in proptest::collection::vec(bulk_action(), 1..300),
        window in 1usize..5,
        threshold in 0u64..6,
        batch_size in 1usize..6,
    ) {
        let mut o = fresh(window);
        o.enable_bulk(BulkPolicy { threshold, batch: batch_size });
        let mut next_seq = 1u64;
        let mut stored: BTreeSet<u64> = BTreeSet::new();
        let mut confirmed = 0u64;
        let mut sent: BTreeSet<u64> = BTreeSet::new();
        let mut batch: BTreeSet<u64> = BTreeSet::new();
        let mut now = Duration::ZERO;
        for a in actions {
            let published = match a {
                BulkAction::Mqtt(Action::Store) => {
                    stored.insert(next_seq);
                    next_seq += 1;
                    o.stored(next_seq - 1, now)
                }
                BulkAction::Mqtt(Action::LinkUp) => { sent.clear(); o.link_up(now) }
                BulkAction::Mqtt(Action::LinkDown) => { sent.clear(); o.link_down(); vec![] }
                BulkAction::Mqtt(Action::PubAck(i)) => match sent.iter().nth(i).copied() {
                    Some(seq) => { sent.remove(&seq); o.pub_acked(seq, now) }
                    None => vec![],
                },
                BulkAction::Mqtt(Action::PublishFailed(i)) => match sent.iter().nth(i).copied() {
                    Some(seq) => { sent.remove(&seq); o.publish_failed(seq); vec![] }
                    None => vec![],
                },
                BulkAction::Mqtt(Action::Confirm(n)) | BulkAction::Answer(n) => {
                    let n = n.min(next_seq - 1);
                    let (delete, publish) = if matches!(a, BulkAction::Answer(_)) {
                        batch.clear();
                        o.bulk_answered(n, now)
                    } else {
                        o.confirmed(n, AckSource::Mqtt, now).unwrap()
                    };
                    prop_assert_eq!(delete.is_some(), n > confirmed);
                    confirmed = confirmed.max(n);
                    stored.retain(|s| *s > confirmed);
                    sent.retain(|s| *s > confirmed);
                    batch.retain(|s| *s > confirmed);
                    publish
                }
                BulkAction::Mqtt(Action::Advance(secs)) => {
                    now += Duration::from_secs(secs);
                    let published = o.tick(now);
                    // A publish past its resend timeout is given up (and may go either way again).
                    sent.retain(|seq| matches!(o.stage(*seq), Some(Stage::Sent { .. })));
                    published
                }
                BulkAction::Batch => {
                    let had_batch = !batch.is_empty();
                    if let Some(b) = o.next_bulk_batch(now) {
                        prop_assert!(!had_batch, "a second batch while one is out");
                        prop_assert!(b.len() <= batch_size);
                        let mut sorted = b.clone();
                        sorted.sort();
                        prop_assert_eq!(&sorted, &b, "batches go oldest first");
                        for seq in &b {
                            prop_assert!(stored.contains(seq), "batched {} which is not stored", seq);
                            prop_assert!(!sent.contains(seq), "{} is in the MQTT window", seq);
                        }
                        batch.extend(b);
                    }
                    vec![]
                }
                BulkAction::Fail(secs) => {
                    batch.clear();
                    o.bulk_failed(now, Duration::from_secs(secs))
                }
                BulkAction::Disable => { batch.clear(); o.bulk_disabled(now) }
            };
            for seq in &published {
                prop_assert!(stored.contains(seq), "published {} which is not stored", seq);
                prop_assert!(!batch.contains(seq), "published {} which is in the HTTP batch", seq);
            }
            sent.extend(published);
            prop_assert_eq!(o.depth(), stored.len() as u64, "every stored event is kept");
            prop_assert!(o.in_flight() <= window);
            for seq in &batch {
                prop_assert_eq!(o.stage(*seq), Some(Stage::Bulk));
            }
        }
        // Liveness: the batch out is put back, every later batch is committed, and MQTT takes the
        // rest with every publish acknowledged: no event is left waiting in the queue.
        let confirmed_now = o.confirmed_seq();
        o.bulk_answered(confirmed_now, now);
        let mut frontier: Vec<u64> = o.link_up(now);
        for _ in 0..4 * next_seq + 4 {
            if let Some(seq) = frontier.pop() {
                frontier.extend(o.pub_acked(seq, now));
                continue;
            }
            let Some(b) = o.next_bulk_batch(now) else { break };
            frontier.extend(o.bulk_answered(*b.last().unwrap(), now).1);
        }
        for seq in 1..next_seq {
            prop_assert!(
                !matches!(o.stage(seq), Some(Stage::Queued | Stage::Bulk)),
                "{} is stranded: {:?}", seq, o.stage(seq)
            );
        }
    }
}

#[test]
fn dropped_events_leave_the_window_unconfirmed_and_free_their_slots() {
    let mut o = fresh(2);
    for seq in 1..=5 {
        o.stored(seq, S);
    }
    assert_eq!(o.link_up(S), [1, 2]);
    // The bounds drop 1..=3 (two of them in flight): their slots go to the next events.
    assert_eq!(o.dropped(3, S), [4, 5]);
    assert_eq!(o.depth(), 2);
    assert_eq!(o.confirmed_seq(), 0, "a drop is not a confirmation");
    assert_eq!(o.stage(2), None);
    // The cloud's ack passing the gap confirms as usual.
    let (delete, _) = o.confirmed(5, AckSource::Mqtt, S).unwrap();
    assert_eq!(delete, Some(5));
    assert_eq!(o.depth(), 0);
}

// ---- where an ack comes from (issue 12: a forged ack wipes a Pi's queue) ----

#[test]
fn an_mqtt_ack_above_the_highest_seq_issued_is_refused_and_changes_nothing() {
    let mut o = fresh(4);
    o.link_up(S);
    for seq in 1..=3 {
        o.stored(seq, S);
    }
    assert_eq!(
        o.confirmed(1_000_000, AckSource::Mqtt, S),
        Err(RefusedAck {
            acked_seq: 1_000_000,
            highest_issued: 3
        })
    );
    assert_eq!(o.confirmed_seq(), 0);
    assert_eq!(o.depth(), 3, "every stored event is still there");
    // The next event is still kept after the refusal: the forged ack does not cover it.
    assert_eq!(o.stored(4, S), [4]);
    assert_eq!(o.depth(), 4);
    assert_eq!(o.highest_issued(), 4);
}

#[test]
fn an_mqtt_ack_of_exactly_the_highest_seq_issued_confirms() {
    let mut o = fresh(4);
    for seq in 1..=3 {
        o.stored(seq, S);
    }
    assert_eq!(o.confirmed(3, AckSource::Mqtt, S), Ok((Some(3), vec![])));
    assert_eq!(o.depth(), 0);
}

#[test]
fn an_mqtt_ack_on_an_empty_new_outbox_is_refused() {
    let mut o = fresh(4);
    assert!(o.confirmed(1, AckSource::Mqtt, S).is_err());
    assert_eq!(o.confirmed(0, AckSource::Mqtt, S), Ok((None, vec![])));
}

#[test]
fn an_api_ack_above_the_highest_seq_issued_confirms_and_counts_those_seqs_as_issued() {
    let mut o = fresh(4);
    o.stored(1, S);
    assert_eq!(o.confirmed(50, AckSource::Api, S), Ok((Some(50), vec![])));
    assert_eq!(o.confirmed_seq(), 50);
    assert_eq!(o.highest_issued(), 50);
    // The retained MQTT ack of the same value that follows is now an old ack, not a refusal.
    assert_eq!(o.confirmed(50, AckSource::Mqtt, S), Ok((None, vec![])));
    assert!(o.confirmed(51, AckSource::Mqtt, S).is_err());
}

#[test]
fn a_bulk_answer_above_the_highest_seq_issued_is_taken() {
    let mut o = draining(4, 0, 10, 3);
    let batch = o.next_bulk_batch(S).unwrap();
    assert_eq!(batch, [1, 2, 3]);
    assert_eq!(o.bulk_answered(9, S).0, Some(9));
    assert_eq!(o.highest_issued(), 9);
}

#[test]
fn dropped_seqs_and_the_stores_next_seq_count_as_issued() {
    let mut o = OutboxState::new(policy(4), 2, [3, 4]);
    assert_eq!(o.highest_issued(), 4);
    o.issued_up_to(9);
    assert_eq!(
        o.highest_issued(),
        9,
        "seqs 5..=9 were dropped before the restart"
    );
    assert_eq!(o.confirmed(9, AckSource::Mqtt, S).map(|c| c.0), Ok(Some(9)));
}
