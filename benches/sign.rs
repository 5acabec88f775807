//! Per-frame signing cost: `EventSigner::sign_into` against the straightforward aws-sigv4 path
//! and against a floor made of the bare primitives a signed frame cannot do without.
//!
//! Groups `sign/<audio bytes>` (3,200 / 32,000 / 65,536 bytes of audio in an `AudioEvent` inner
//! message; throughput is counted over the whole inner message, the bytes that are signed):
//!
//! * `ours_manual_time`: `sign_into` into a reused `BytesMut` with a `Clock` over `ManualTime`.
//! * `ours_system_time`: the same with `Clock::system()`.
//! * `aws_sigv4`: `aws_sigv4::event_stream::sign_message` on the inner `Message` (it encodes the
//!   inner message into the envelope payload, as the SDK does), then `write_message_to` into a
//!   reused `Vec`.
//! * `floor_sha2` / `floor_ring`: SHA-256 of the inner message, SHA-256 of the 15-byte `:date`
//!   header, HMAC-SHA256 with a pre-keyed key over a real-length (279-byte) string-to-sign, CRC-32
//!   of the 8-byte prelude and CRC-32 of the whole frame (header block + inner message, read in
//!   place, nothing copied). The floor is the faster of the two.
//!
//! Groups `backend/<audio bytes>` and `backend/small` compare the hashing backends one primitive
//! at a time: sha2 (SHA-NI through its runtime detection) vs `ring::digest`, sha2's `Hmac` vs
//! `ring::hmac`, and `crc32fast`.
//!
//! Before measuring, each size checks that our frame and the aws-sigv4 frame carry the same
//! payload and, at a whole-second time (where the two `:date` conventions agree), the same
//! signature.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hmac::Mac;
use sha2::{Digest, Sha256};
use sigv4_ws::proto::codec::{HeaderValue, Message, CONTENT_TYPE, EVENT_TYPE, MESSAGE_TYPE};
use sigv4_ws::proto::sigv4::derive_signing_key;
use sigv4_ws::{Clock, EventSigner, ManualTime};

const SIZES: [usize; 3] = [3_200, 32_000, 65_536];
const REGION: &str = "us-west-2";
const SERVICE: &str = "transcribe";
const SEED: &str = "3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b94";
/// 2024-08-20T23:01:44.567Z: keeps milliseconds, as our `:date` does.
const FIXED_MILLIS: u64 = 1_724_194_904_567;

#[path = "support/floor.rs"]
mod floor;
#[path = "support/sdk_audio_event.rs"]
mod sdk_audio_event;
use floor::Floor;

fn signing_key() -> [u8; 32] {
    derive_signing_key(creds().secret_access_key(), "20240820", REGION, SERVICE)
}

fn creds() -> Credentials {
    Credentials::new(
        "ANOTREAL",
        "notrealrnrELgWzOk3IfjzDKtFBhDby",
        Some("notarealsessiontoken".into()),
        None,
        "bench",
    )
}

fn fixed_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(FIXED_MILLIS)
}

fn audio(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i * 31 + 7) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// The encoded `AudioEvent` inner message, by our codec.
fn inner_message(audio: &Bytes) -> Bytes {
    Message::new(audio.clone())
        .with_header(MESSAGE_TYPE, HeaderValue::from("event"))
        .with_header(EVENT_TYPE, HeaderValue::from("AudioEvent"))
        .with_header(CONTENT_TYPE, HeaderValue::from("application/octet-stream"))
        .encode()
        .expect("the inner message encodes")
}

/// The same inner message as aws-smithy-types builds it.
fn sdk_inner_message(audio: &Bytes) -> aws_smithy_types::event_stream::Message {
    sdk_audio_event::sdk_audio_event(audio.clone())
}

/// The straightforward path: sign with aws-sigv4 (chained on its previous signature), then
/// encode the signed message with aws-smithy-eventstream into `out` (cleared first).
fn sdk_path() -> impl FnMut(&aws_smithy_types::event_stream::Message, SystemTime, &mut Vec<u8>) {
    // `Credentials` into the aws-smithy-runtime-api `Identity` the signing params borrow.
    let identity = creds().into();
    let mut last_signature = SEED.to_owned();
    move |message, time, out| {
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name(SERVICE)
            .time(time)
            .settings(())
            .build()
            .expect("signing params build");
        let (signed, signature) =
            aws_sigv4::event_stream::sign_message(message, &last_signature, &params)
                .expect("aws-sigv4 signs")
                .into_parts();
        last_signature = signature;
        out.clear();
        aws_smithy_eventstream::frame::write_message_to(&signed, out)
            .expect("aws-smithy-eventstream encodes");
    }
}

/// Checks, once per size, that all three paths agree on what they produce.
fn cross_check(audio: &Bytes, inner: &Bytes) {
    let whole_second = UNIX_EPOCH + Duration::from_secs(FIXED_MILLIS / 1000);
    let mut ours = EventSigner::new(
        creds(),
        REGION,
        SERVICE,
        SEED,
        Clock::new(ManualTime::new(whole_second)),
    );
    let mut ours_frame = BytesMut::new();
    ours.sign_into(inner, &mut ours_frame).expect("we sign");
    let mut sdk_frame = Vec::new();
    sdk_path()(&sdk_inner_message(audio), whole_second, &mut sdk_frame);

    let ours_msg = Message::decode(&ours_frame).expect("our frame decodes");
    let sdk_msg = Message::decode(&sdk_frame).expect("the aws-sigv4 frame decodes");
    assert_eq!(
        ours_msg.payload(),
        inner,
        "our envelope carries the inner message"
    );
    assert_eq!(
        sdk_msg.payload(),
        inner,
        "the aws-sigv4 envelope carries the same inner message"
    );
    assert_eq!(
        ours_msg.header(":chunk-signature"),
        sdk_msg.header(":chunk-signature"),
        "same signature at a whole-second time"
    );
    assert_eq!(ours_msg.header(":date"), sdk_msg.header(":date"));
    assert_eq!(ours_frame.len(), sdk_frame.len());
}

fn bench_sign(c: &mut Criterion) {
    for audio_len in SIZES {
        let audio = audio(audio_len);
        let inner = inner_message(&audio);
        let sdk_inner = sdk_inner_message(&audio);
        cross_check(&audio, &inner);

        let mut group = c.benchmark_group(format!("sign/{audio_len}"));
        group.throughput(Throughput::Bytes(inner.len() as u64));

        let mut dst = BytesMut::with_capacity(inner.len() + 128);
        let manual = Clock::new(ManualTime::new(fixed_time()));
        for (name, clock) in [
            ("ours_manual_time", manual),
            ("ours_system_time", Clock::system()),
        ] {
            let mut signer = EventSigner::new(creds(), REGION, SERVICE, SEED, clock);
            group.bench_function(name, |b| {
                b.iter(|| {
                    dst.clear();
                    signer
                        .sign_into(black_box(&inner), &mut dst)
                        .expect("we sign");
                    black_box(dst.len())
                })
            });
        }

        let mut sdk = sdk_path();
        let clock = Clock::new(ManualTime::new(fixed_time()));
        let mut out = Vec::with_capacity(inner.len() + 128);
        group.bench_function("aws_sigv4", |b| {
            b.iter(|| {
                sdk(black_box(&sdk_inner), clock.now(), &mut out);
                black_box(out.len())
            })
        });

        let floor = Floor::new(inner.len(), &signing_key());
        group.bench_function("floor_sha2", |b| {
            b.iter(|| floor.run_sha2(black_box(&inner)))
        });
        group.bench_function("floor_ring", |b| {
            b.iter(|| floor.run_ring(black_box(&inner)))
        });
        group.finish();
    }
}

fn bench_backends(c: &mut Criterion) {
    for audio_len in SIZES {
        let inner = inner_message(&audio(audio_len));
        let mut group = c.benchmark_group(format!("backend/{audio_len}"));
        group.throughput(Throughput::Bytes(inner.len() as u64));
        group.bench_function("sha256_sha2", |b| {
            b.iter(|| Sha256::digest(black_box(&inner)))
        });
        group.bench_function("sha256_ring", |b| {
            b.iter(|| ring::digest::digest(&ring::digest::SHA256, black_box(&inner)))
        });
        group.bench_function("crc32fast", |b| {
            b.iter(|| crc32fast::hash(black_box(&inner)))
        });
        group.finish();
    }

    let floor = Floor::new(0, &signing_key());
    let mut group = c.benchmark_group("backend/small");
    group.bench_function("hmac_279B_sha2", |b| {
        b.iter(|| {
            let mut mac = floor.sha2_key.clone();
            mac.update(black_box(&floor.string_to_sign));
            mac.finalize().into_bytes()
        })
    });
    group.bench_function("hmac_279B_ring", |b| {
        b.iter(|| ring::hmac::sign(&floor.ring_key, black_box(&floor.string_to_sign)))
    });
    group.bench_function("sha256_15B_sha2", |b| {
        b.iter(|| Sha256::digest(black_box(floor.date_header)))
    });
    group.bench_function("sha256_15B_ring", |b| {
        b.iter(|| ring::digest::digest(&ring::digest::SHA256, black_box(&floor.date_header)))
    });
    group.finish();
}

criterion_group!(benches, bench_sign, bench_backends);
criterion_main!(benches);
