//! The seed bug, pinned: the presigned URL and every event must read ONE skew-corrected clock.
//!
//! aws/aws-sdk-js-v3#6217: with the clock an hour off, correcting only the URL's time (and
//! not the events' `:date`) still got `InvalidSignatureException` (protocol.md 5.3-5.5). Here
//! a `Presigner` and `EventSigner`s share one `Clock`; after `set_offset_millis` every later
//! URL and frame -- including frames of a signer created before the change -- must move.
//!
//! Envelopes are taken apart by hand (`support::decode_envelope`): bytes 12..27 are the
//! `:date` header, its value the big-endian i64 milliseconds at 19..27, and 47..79 the
//! signature.

mod support;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use sigv4_ws::proto::sigv4::{
    derive_signing_key, encode_date_header, event_string_to_sign, format_amz_date, hex_lower,
    hmac_sha256,
};
use sigv4_ws::{Clock, EventSigner, ManualTime, PresignedUrl, Presigner};
use support::{at_millis, creds, decode_envelope, iso_time, Envelope};
use url::Url;

const REGION: &str = "us-east-1";
const SERVICE: &str = "rekognition";
const HOUR_MS: i64 = 3_600_000;

fn credentials() -> Credentials {
    creds(
        "ANOTREAL",
        "notrealrnrELgWzOk3IfjzDKtFBhDby",
        Some("notarealsessiontoken"),
    )
}

fn endpoint() -> Url {
    Url::parse("https://streaming-rekognition.us-east-1.amazonaws.com/start-face-liveness-session-websocket?session-id=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0&video-width=640&video-height=480&challenge-versions=FaceMovementAndLightChallenge_1.0.0").expect("url")
}

fn amz_date(url: &PresignedUrl) -> SystemTime {
    let text = url
        .url()
        .query_pairs()
        .find(|(k, _)| k == "X-Amz-Date")
        .map(|(_, v)| v.into_owned())
        .expect("X-Amz-Date");
    sigv4_ws::proto::sigv4::parse_amz_date(&text).expect("yyyymmddThhmmssZ")
}

/// A fake inner message: any bytes will do for the signer.
fn inner(n: u8) -> Vec<u8> {
    vec![n; 16 + usize::from(n)]
}

/// Recomputes a frame's signature from scratch with the primitives, from the frame's own
/// `:date` and the prior signature, and checks the signer got the same.
fn check_independently(frame: &Envelope, prior_hex: &str) {
    let time = at_millis(u64::try_from(frame.date_millis).expect("after 1970"));
    let date = format_amz_date(time).expect("after 1970");
    let key = derive_signing_key(
        "notrealrnrELgWzOk3IfjzDKtFBhDby",
        &date[..8],
        REGION,
        SERVICE,
    );
    let sts = event_string_to_sign(
        time,
        REGION,
        SERVICE,
        prior_hex,
        &encode_date_header(frame.date_millis),
        &frame.payload,
    )
    .expect("after 1970");
    assert_eq!(frame.date_header, encode_date_header(frame.date_millis));
    assert_eq!(
        hex_lower(&hmac_sha256(&key, sts.as_bytes())),
        frame.signature_hex()
    );
}

/// One side of the experiment: a clock over the shared manual time, its presigner and signers.
struct Side {
    clock: Clock,
    presigner: Presigner,
}

impl Side {
    fn new(time: &ManualTime) -> Side {
        Side {
            clock: Clock::new(time.clone()),
            presigner: Presigner::new(credentials(), REGION, SERVICE),
        }
    }

    fn presign(&self) -> PresignedUrl {
        self.presigner
            .presign(&endpoint(), &self.clock)
            .expect("presign")
    }

    fn signer(&self, url: &PresignedUrl) -> EventSigner {
        EventSigner::new(
            credentials(),
            REGION,
            SERVICE,
            url.signature(),
            self.clock.clone(),
        )
    }
}

fn sign(signer: &mut EventSigner, n: u8) -> Envelope {
    decode_envelope(&signer.sign(&inner(n)).expect("sign"))
}

#[test]
fn one_offset_moves_the_url_and_every_later_frame() {
    // Two clocks over the same manual time, run in lockstep: `fixed` gets the offset change,
    // `control` never does. Until the change they must produce identical bytes, so every
    // difference afterwards is caused by the offset alone.
    let time = ManualTime::new(iso_time("2024-08-20T23:01:43.250Z"));
    let fixed = Side::new(&time);
    let control = Side::new(&time);

    let url1 = fixed.presign();
    assert_eq!(url1, control.presign());
    let mut old_signer = fixed.signer(&url1);
    let mut control_old = control.signer(&url1);
    let mut prior_old = url1.signature().to_owned();
    for n in 1..=2 {
        time.advance(Duration::from_millis(1_111));
        let frame = sign(&mut old_signer, n);
        assert_eq!(
            frame,
            sign(&mut control_old, n),
            "before the change, frame {n}"
        );
        assert_eq!(
            frame.date_millis,
            support::epoch_millis(time_now(&time)) as i64
        );
        check_independently(&frame, &prior_old);
        prior_old = frame.signature_hex();
    }
    let mut control_prior_old = prior_old.clone();

    // The server turns out to be an hour ahead.
    fixed.clock.set_offset_millis(HOUR_MS);
    assert_eq!(control.clock.offset_millis(), 0);

    time.advance(Duration::from_millis(2_345));
    let url2 = fixed.presign();
    let control_url2 = control.presign();
    assert_eq!(
        amz_date(&url2)
            .duration_since(amz_date(&control_url2))
            .expect("later"),
        Duration::from_secs(3600),
        "X-Amz-Date moved by exactly one hour"
    );
    assert_eq!(
        url2.signed_at(),
        time_now(&time) + Duration::from_secs(3600)
    );
    assert_ne!(url2.signature(), control_url2.signature());

    let mut new_signer = fixed.signer(&url2);
    let mut control_new = control.signer(&control_url2);
    let mut prior_new = url2.signature().to_owned();
    let mut control_prior_new = control_url2.signature().to_owned();
    for n in 3..=4 {
        time.advance(Duration::from_millis(1_234));
        let source_ms = support::epoch_millis(time_now(&time)) as i64;
        for (label, signer, control_signer, prior, control_prior) in [
            (
                "fresh signer",
                &mut new_signer,
                &mut control_new,
                &mut prior_new,
                &mut control_prior_new,
            ),
            (
                "old signer",
                &mut old_signer,
                &mut control_old,
                &mut prior_old,
                &mut control_prior_old,
            ),
        ] {
            let frame = sign(signer, n);
            let control_frame = sign(control_signer, n);
            assert_eq!(
                frame.date_millis - control_frame.date_millis,
                HOUR_MS,
                "{label}, frame {n}: :date moved by one hour"
            );
            assert_eq!(
                frame.date_millis,
                source_ms + HOUR_MS,
                "{label}, frame {n}: :date is the corrected time"
            );
            assert_ne!(
                frame.signature, control_frame.signature,
                "{label}, frame {n}: signature changed"
            );
            assert_eq!(frame.payload, control_frame.payload);
            check_independently(&frame, prior);
            check_independently(&control_frame, control_prior);
            *prior = frame.signature_hex();
            *control_prior = control_frame.signature_hex();
        }
    }
}

/// The uncorrected source time.
fn time_now(time: &ManualTime) -> SystemTime {
    Clock::new(time.clone()).source_now()
}

#[test]
fn date_header_keeps_milliseconds_string_to_sign_whole_seconds() {
    let time = ManualTime::new(iso_time("2024-08-20T23:01:44.567Z"));
    let side = Side::new(&time);
    side.clock.set_offset_millis(-250);
    let url = side.presign();
    let mut signer = side.signer(&url);
    let frame = sign(&mut signer, 1);
    assert_eq!(
        frame.date_millis, 1_724_194_904_317,
        ":date keeps the corrected milliseconds"
    );
    assert_eq!(frame.date_millis % 1000, 317);

    // Independent recomputation: the string-to-sign has whole seconds, the hashed :date the ms.
    let with_ms = at_millis(1_724_194_904_317);
    let sts = event_string_to_sign(
        with_ms,
        REGION,
        SERVICE,
        url.signature(),
        &encode_date_header(frame.date_millis),
        &frame.payload,
    )
    .expect("after 1970");
    assert_eq!(sts.lines().nth(1), Some("20240820T230144Z"));
    let key = derive_signing_key(
        "notrealrnrELgWzOk3IfjzDKtFBhDby",
        "20240820",
        REGION,
        SERVICE,
    );
    assert_eq!(
        hex_lower(&hmac_sha256(&key, sts.as_bytes())),
        frame.signature_hex()
    );

    // Hashing a whole-second :date instead (what aws-sigv4 sends) is a different signature,
    // so the test above could tell the two apart.
    let truncated = event_string_to_sign(
        with_ms,
        REGION,
        SERVICE,
        url.signature(),
        &encode_date_header(1_724_194_904_000),
        &frame.payload,
    )
    .expect("after 1970");
    assert_ne!(
        hex_lower(&hmac_sha256(&key, truncated.as_bytes())),
        frame.signature_hex()
    );
}

#[test]
fn stream_crossing_utc_midnight_changes_scope_between_frames() {
    // Source time 22:59:59.600 on the 20th; the clock is an hour ahead, so the corrected
    // time is 23:59:59.600 and the next frame, 0.8 s later, is on the 21st. The scope
    // follows the corrected clock, not the source clock (still on the 20th for both frames).
    let time = ManualTime::new(iso_time("2024-08-20T22:59:59.600Z"));
    let side = Side::new(&time);
    side.clock.set_offset_millis(HOUR_MS);
    let url = side.presign();
    assert_eq!(amz_date(&url), iso_time("2024-08-20T23:59:59Z"));
    let mut signer = side.signer(&url);

    let before = sign(&mut signer, 1);
    time.advance(Duration::from_millis(800));
    let after = sign(&mut signer, 2);
    assert_eq!(before.date_millis, 1_724_198_399_600);
    assert_eq!(after.date_millis, 1_724_198_400_400);
    assert_eq!(
        format_amz_date(time_now(&time)).as_deref(),
        Some("20240820T230000Z"),
        "source clock still on the 20th"
    );

    let scope_date = |frame: &Envelope| {
        format_amz_date(at_millis(frame.date_millis as u64)).expect("after 1970")[..8].to_owned()
    };
    assert_eq!(scope_date(&before), "20240820");
    assert_eq!(scope_date(&after), "20240821");
    check_independently(&before, url.signature());
    check_independently(&after, &before.signature_hex());

    // With the previous day's key and scope the second frame's signature would differ.
    let stale_key = derive_signing_key(
        "notrealrnrELgWzOk3IfjzDKtFBhDby",
        "20240820",
        REGION,
        SERVICE,
    );
    let sts = event_string_to_sign(
        at_millis(after.date_millis as u64),
        REGION,
        SERVICE,
        &before.signature_hex(),
        &after.date_header,
        &after.payload,
    )
    .expect("after 1970");
    assert!(sts.contains("\n20240821/us-east-1/rekognition/aws4_request\n"));
    assert_ne!(
        hex_lower(&hmac_sha256(&stale_key, sts.as_bytes())),
        after.signature_hex()
    );
}
