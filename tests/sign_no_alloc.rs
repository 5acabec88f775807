//! `EventSigner::sign_into` allocates nothing per frame once warm, when the destination buffer
//! already has room: a counting global allocator proves it.

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use bytes::BytesMut;
use sigv4_ws::{Clock, EventSigner, ManualTime};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{allocations, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SEED: &str = "3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b94";

fn signer(clock: Clock) -> EventSigner {
    let creds = Credentials::new(
        "ANOTREAL",
        "notrealrnrELgWzOk3IfjzDKtFBhDby",
        Some("notarealsessiontoken".into()),
        None,
        "test",
    );
    EventSigner::new(creds, "us-west-2", "transcribe", SEED, clock)
}

/// Signs `frames` events of each size into `dst` (cleared before each), advancing `time` by
/// `step` per event, and returns how many allocations that took.
fn allocations_while_signing(
    signer: &mut EventSigner,
    time: Option<&ManualTime>,
    step: Duration,
    dst: &mut BytesMut,
    payloads: &[Vec<u8>],
    frames: usize,
) -> u64 {
    let before = allocations();
    for _ in 0..frames {
        for payload in payloads {
            if let Some(time) = time {
                time.advance(step);
            }
            dst.clear();
            signer.sign_into(payload, dst).unwrap();
        }
    }
    allocations() - before
}

fn payloads() -> Vec<Vec<u8>> {
    [0usize, 5, 3_288, 32_088, 65_624]
        .iter()
        .map(|&len| (0..len).map(|i| i as u8).collect())
        .collect()
}

#[test]
fn steady_state_sign_into_allocates_nothing() {
    let payloads = payloads();
    let largest = payloads.iter().map(Vec::len).max().unwrap_or(0);
    let mut dst = BytesMut::with_capacity(largest + sigv4_ws::proto::sign::ENVELOPE_OVERHEAD);

    // A manual clock at 23:59:50 UTC: 100 ms steps cross seconds (the per-second prefix is
    // rebuilt without allocating) but stay within the day while counting.
    let time = ManualTime::new(UNIX_EPOCH + Duration::from_secs(1_724_198_390));
    let mut manual = signer(Clock::new(time.clone()));
    // Warm-up: the first event derives the day's signing key (that allocates, once a day).
    allocations_while_signing(
        &mut manual,
        Some(&time),
        Duration::ZERO,
        &mut dst,
        &payloads,
        1,
    );
    let counted = allocations_while_signing(
        &mut manual,
        Some(&time),
        Duration::from_millis(100),
        &mut dst,
        &payloads,
        10,
    );
    assert_eq!(
        counted, 0,
        "allocations in 50 warm sign_into calls (manual clock)"
    );

    let mut system = signer(Clock::system());
    allocations_while_signing(&mut system, None, Duration::ZERO, &mut dst, &payloads, 1);
    let counted =
        allocations_while_signing(&mut system, None, Duration::ZERO, &mut dst, &payloads, 10);
    // A UTC midnight between the warm-up and here would derive one new day key; allow for it.
    assert!(
        counted <= 1,
        "{counted} allocations in 50 warm sign_into calls (system clock)"
    );

    // And the end frame.
    let before = allocations();
    dst.clear();
    manual.finish_into(&mut dst).unwrap();
    assert_eq!(allocations() - before, 0, "allocations in finish_into");
}

#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    let v: Vec<u8> = Vec::with_capacity(16);
    drop(std::hint::black_box(v));
    assert_eq!(allocations() - before, 1);

    // `sign_into` into an empty buffer does allocate (the buffer grows), and it is counted.
    let mut s = signer(Clock::new(ManualTime::new(
        UNIX_EPOCH + Duration::from_secs(1_724_198_390),
    )));
    let mut dst = BytesMut::new();
    s.sign_into(b"x", &mut dst).unwrap();
    let before = allocations();
    let mut fresh = BytesMut::new();
    s.sign_into(b"x", &mut fresh).unwrap();
    assert!(allocations() - before >= 1);
}
