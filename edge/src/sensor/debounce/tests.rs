//! Raw edge sequences through the debounce core.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn core(debounce: u64, min_active: u64) -> Debounce {
    Debounce::new(DebounceConfig {
        debounce: ms(debounce),
        min_active: ms(min_active),
    })
}

/// Feeds `(active, at_ms)` edges, polling at every wake time before the next edge and finally
/// until `end_ms`, as the actor does; returns the detection times of every activation.
fn run(d: &mut Debounce, edges: &[(bool, u64)], end_ms: u64) -> Vec<u64> {
    let mut fired = Vec::new();
    let mut wake: Option<Duration> = None;
    let record = |step: Step, fired: &mut Vec<u64>| {
        if let Some(a) = step.activation {
            fired.push(a.detected_at.as_millis() as u64);
        }
        step.wake_at
    };
    for &(active, at) in edges {
        while let Some(w) = wake.filter(|w| *w < ms(at)) {
            wake = record(d.poll(w), &mut fired);
            assert_ne!(wake, Some(w), "a wake time must make progress");
        }
        wake = record(d.edge(active, ms(at)), &mut fired);
    }
    while let Some(w) = wake.filter(|w| *w <= ms(end_ms)) {
        wake = record(d.poll(w), &mut fired);
        if wake == Some(w) {
            break;
        }
    }
    fired
}

#[test]
fn a_clean_press_counts_once_when_debounce_and_min_active_have_passed() {
    let mut d = core(30, 50);
    assert_eq!(run(&mut d, &[(true, 100), (false, 400)], 1000), [150]);
}

#[test]
fn the_debounce_delay_counts_when_it_is_longer_than_min_active() {
    let mut d = core(80, 20);
    assert_eq!(run(&mut d, &[(true, 100), (false, 400)], 1000), [180]);
}

#[test]
fn bounces_on_press_count_as_one_press_once_the_input_settles() {
    let mut d = core(30, 50);
    let edges = [
        (true, 100),
        (false, 102),
        (true, 105),
        (false, 109),
        (true, 112),
        (false, 600),
    ];
    // Stable from 112: counts at max(112 + 30, 100 + 50) = 150.
    assert_eq!(run(&mut d, &edges, 1000), [150]);
}

#[test]
fn a_glitch_shorter_than_min_active_does_not_count() {
    let mut d = core(5, 50);
    assert_eq!(
        run(&mut d, &[(true, 100), (false, 110)], 1000),
        Vec::<u64>::new()
    );
    assert!(
        !d.is_pressed(),
        "the glitch is over once the input is stable again"
    );
}

#[test]
fn a_pulse_that_never_settles_does_not_count() {
    let mut d = core(30, 10);
    let edges: Vec<(bool, u64)> = (0..40).map(|i| (i % 2 == 0, 100 + i * 10)).collect();
    assert_eq!(run(&mut d, &edges, 100 + 39 * 10 + 5), Vec::<u64>::new());
}

#[test]
fn a_long_press_counts_once_and_does_not_repeat() {
    let mut d = core(30, 50);
    assert_eq!(run(&mut d, &[(true, 100), (false, 60_000)], 70_000), [150]);
    let step = d.poll(ms(30_000));
    assert_eq!(step.activation, None);
}

#[test]
fn a_bounce_in_the_middle_of_a_press_that_already_counted_does_not_count_again() {
    let mut d = core(30, 50);
    let edges = [(true, 100), (false, 300), (true, 310), (false, 900)];
    assert_eq!(run(&mut d, &edges, 2000), [150]);
}

#[test]
fn two_presses_separated_by_a_real_release_count_twice() {
    let mut d = core(30, 50);
    let edges = [(true, 100), (false, 300), (true, 500), (false, 700)];
    assert_eq!(run(&mut d, &edges, 2000), [150, 550]);
}

#[test]
fn a_release_shorter_than_debounce_keeps_the_same_press() {
    let mut d = core(30, 50);
    // Released for 20 ms only (< 30 ms debounce): the same press, no second activation.
    let edges = [(true, 100), (false, 300), (true, 320), (false, 700)];
    assert_eq!(run(&mut d, &edges, 2000), [150]);
}

#[test]
fn a_press_that_counted_just_before_its_release_edge_is_reported_with_that_edge() {
    let mut d = core(30, 50);
    d.edge(true, ms(100));
    // The caller never polled; the release edge at 400 settles the press first.
    let step = d.edge(false, ms(400));
    let a = step
        .activation
        .expect("the press counted before the release");
    assert_eq!((a.pressed_at, a.detected_at), (ms(100), ms(150)));
}

#[test]
fn a_repeated_level_is_not_an_edge() {
    let mut d = core(30, 50);
    d.edge(true, ms(100));
    let step = d.edge(true, ms(140));
    assert_eq!(step.activation, None);
    assert_eq!(
        step.wake_at,
        Some(ms(150)),
        "the repeat did not restart the debounce"
    );
}

#[test]
fn the_wake_time_says_when_to_poll_and_nothing_is_due_when_idle() {
    let mut d = core(30, 50);
    assert_eq!(d.poll(ms(10)).wake_at, None);
    assert_eq!(d.edge(true, ms(100)).wake_at, Some(ms(150)));
    let step = d.poll(ms(150));
    assert!(step.activation.is_some());
    assert_eq!(
        step.wake_at, None,
        "nothing to do while held after counting"
    );
    assert_eq!(d.edge(false, ms(200)).wake_at, Some(ms(230)));
    assert_eq!(d.poll(ms(230)).wake_at, None);
    assert!(!d.is_pressed());
}

#[test]
fn zero_debounce_and_zero_min_active_count_on_the_edge_itself() {
    let mut d = core(0, 0);
    let step = d.edge(true, ms(100));
    assert_eq!(step.activation.map(|a| a.detected_at), Some(ms(100)));
}

#[test]
fn an_input_active_at_start_counts_as_a_press() {
    let mut d = core(30, 50);
    assert_eq!(run(&mut d, &[(true, 0)], 500), [50]);
}
