//! Every public presign vector as a test (fixtures/presign/, protocol.md section 2).
//!
//! * The 8 cases of the AWS SigV4 test suite (`aws-signing-test-suite/`) through the generic
//!   `sign_query`, every intermediate compared exactly.
//! * The 6 smithy-typescript `presign` cases of `presign_vectors.json`. All six are POSTs
//!   (and three hash a body or use `UNSIGNED-PAYLOAD`), so none is a WebSocket presign;
//!   their canonical path, query, payload-hash line, string-to-sign and signature are checked
//!   with the primitives instead (see `smithy_ts_case`).
//! * The protocol.md 2.4 worked example through `Presigner::presign_at`.
//! * The Transcribe and Face Liveness URL shapes of `presign_vectors.json` through `Presigner`.

mod support;

use std::time::Duration;

use percent_encoding::percent_decode_str;
use serde_json::Value;
use sigv4_ws::proto::presign::{DEFAULT_EXPIRES_IN, MAX_EXPIRES_IN};
use sigv4_ws::proto::sigv4::{
    canonical_path, canonical_query, credential_scope, derive_signing_key, hex_lower, hmac_sha256,
    presign_canonical_request, request_string_to_sign, sha256_hex, sign_query, QuerySigningInput,
    EMPTY_SHA256_HEX,
};
use sigv4_ws::{PresignError, PresignedUrl, Presigner};
use support::{creds, iso_time, read_json, read_text, str_at, u64_at};
use url::Url;

// ---------------------------------------------------------------------------------------------
// AWS SigV4 test suite (query signing)
// ---------------------------------------------------------------------------------------------

/// Percent-decodes one query component as the suite writes it (raw UTF-8 or `%XX`).
fn decode_component(text: &str) -> String {
    percent_decode_str(text)
        .decode_utf8()
        .unwrap_or_else(|e| panic!("{text:?} is not UTF-8 once decoded: {e}"))
        .into_owned()
}

/// Splits a raw query into decoded pairs; a key without `=` has an empty value.
fn decode_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

/// The parts of a suite `request.txt` (or `query-signed-request.txt`) the signer needs.
struct SuiteRequest {
    method: String,
    path: String,
    params: Vec<(String, String)>,
    host: String,
}

fn parse_request(text: &str) -> SuiteRequest {
    let mut lines = text.lines();
    let request_line = lines.next().expect("request line");
    let mut words = request_line.split(' ');
    let method = words.next().expect("method").to_owned();
    let target = words.next().expect("request target");
    assert_eq!(
        words.next(),
        Some("HTTP/1.1"),
        "request line {request_line:?}"
    );
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let host = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.trim().to_owned())
        .expect("a Host header");
    SuiteRequest {
        method,
        path: path.to_owned(),
        params: decode_query(query),
        host,
    }
}

fn run_suite_case(case: &str) {
    let dir = format!("presign/aws-signing-test-suite/{case}");
    let file = |name: &str| read_text(&format!("{dir}/{name}"));
    let request = parse_request(&file("request.txt"));
    let context: Value = serde_json::from_str(&file("context.json")).expect("context.json");
    assert_eq!(request.method, "GET", "every kept suite case is a GET");
    assert_eq!(
        context["sign_body"],
        Value::Bool(false),
        "payload must be the empty hash"
    );
    assert_eq!(
        context["normalize"],
        Value::Bool(true),
        "paths are normalised"
    );

    let credentials = &context["credentials"];
    let input = QuerySigningInput {
        access_key_id: str_at(credentials, "access_key_id"),
        secret_access_key: str_at(credentials, "secret_access_key"),
        session_token: credentials["token"].as_str(),
        region: str_at(&context, "region"),
        service: str_at(&context, "service"),
        host: &request.host,
        wire_path: &request.path,
        params: &request.params,
        expires_secs: u64_at(&context, "expiration_in_seconds"),
    };
    let signed =
        sign_query(&input, iso_time(str_at(&context, "timestamp"))).expect("time after 1970");

    let expected_request = file("query-canonical-request.txt");
    assert_eq!(
        signed.canonical_request, expected_request,
        "{case}: canonical request"
    );
    assert_eq!(
        expected_request.lines().nth(2),
        Some(signed.canonical_query.as_str()),
        "{case}: canonical query"
    );
    assert_eq!(
        signed.string_to_sign,
        file("query-string-to-sign.txt"),
        "{case}: string-to-sign"
    );
    assert_eq!(
        signed.signature,
        file("query-signature.txt"),
        "{case}: signature"
    );

    // The CRT's signed request lists the same parameters (in its own order) plus the signature.
    let emitted = parse_request(&file("query-signed-request.txt"));
    let mut emitted_params = emitted.params;
    emitted_params.sort();
    let mut ours = decode_query(&signed.canonical_query);
    ours.push(("X-Amz-Signature".to_owned(), signed.signature.clone()));
    ours.sort();
    assert_eq!(emitted_params, ours, "{case}: signed request parameters");
    assert_eq!(emitted.host, request.host);
    assert_eq!(emitted.path, request.path);

    // The index in presign_vectors.json agrees with the raw files.
    let index = read_json("presign/presign_vectors.json");
    let entry = index["suite_cases"]
        .as_array()
        .expect("suite_cases")
        .iter()
        .find(|c| c["case"] == case)
        .unwrap_or_else(|| panic!("{case} is not indexed"));
    assert_eq!(str_at(entry, "expected_signature"), signed.signature);
}

macro_rules! suite_cases {
    ($($name:ident => $dir:literal,)*) => {
        $(
            #[test]
            fn $name() {
                run_suite_case($dir);
            }
        )*

        /// Every case directory on disk and in the index has a test above.
        #[test]
        fn suite_cases_are_all_covered() {
            let covered = [$($dir),*];
            let mut on_disk: Vec<String> =
                std::fs::read_dir(support::fixture_path("presign/aws-signing-test-suite"))
                    .expect("suite directory")
                    .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                    .collect();
            on_disk.sort();
            let mut listed: Vec<String> = covered.iter().map(|s| s.to_string()).collect();
            listed.sort();
            assert_eq!(on_disk, listed);
            let index = read_json("presign/presign_vectors.json");
            assert_eq!(index["suite_cases"].as_array().map(Vec::len), Some(covered.len()));
        }
    };
}

suite_cases! {
    suite_get_vanilla => "get-vanilla",
    suite_get_vanilla_empty_query_key => "get-vanilla-empty-query-key",
    suite_get_vanilla_query => "get-vanilla-query",
    suite_get_vanilla_query_order_encoded => "get-vanilla-query-order-encoded",
    suite_get_vanilla_query_order_key_case => "get-vanilla-query-order-key-case",
    suite_get_vanilla_query_unreserved => "get-vanilla-query-unreserved",
    suite_get_vanilla_utf8_query => "get-vanilla-utf8-query",
    suite_get_vanilla_with_session_token => "get-vanilla-with-session-token",
}

/// Sorting whole `k=v` strings would put `Param-3=` before `Param=`; the suite says key first.
#[test]
fn suite_order_encoded_is_not_a_plain_string_sort() {
    let request = parse_request(&read_text(
        "presign/aws-signing-test-suite/get-vanilla-query-order-encoded/request.txt",
    ));
    let ours = canonical_query(request.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert_eq!(ours, "%E1%88%B4=Value1&Param=Value2&Param-3=Value3");
    let mut naive: Vec<String> = ours.split('&').map(str::to_owned).collect();
    naive.sort();
    assert_ne!(
        naive.join("&"),
        ours,
        "the vector must be able to tell the two sorts apart"
    );
}

// ---------------------------------------------------------------------------------------------
// smithy-typescript presign cases
// ---------------------------------------------------------------------------------------------

/// Checks one smithy-typescript `presign` case with the primitives.
///
/// Why not `sign_query`: every one of these cases is a `POST`, and a WebSocket upgrade is
/// always a `GET` whose payload hash is the hash of the empty string (protocol.md 2.1), which
/// is all `sign_query` / `presign_canonical_request` can express. Two cases additionally hash a
/// body, and one uses the literal `UNSIGNED-PAYLOAD` -- exactly what the JS WebSocket signer
/// avoids by blanking the body. So the full signature cannot come out of our WebSocket
/// presigner; instead this checks every part our presigner shares with them: the canonical
/// path (`canonical_path`), the canonical query (`canonical_query`, session token included),
/// the payload-hash line (`sha256_hex` / `EMPTY_SHA256_HEX`), the string-to-sign
/// (`credential_scope`, `request_string_to_sign`) and the source's signature
/// (`derive_signing_key`, `hmac_sha256`). For the empty-body cases it also shows that the
/// canonical request differs from ours only in its method.
fn smithy_ts_case(index: usize, test_name: &str) {
    let all = read_json("presign/presign_vectors.json");
    let case = &all["smithy_typescript_presign"][index];
    assert_eq!(
        str_at(case, "test"),
        test_name,
        "case order in presign_vectors.json"
    );
    let inputs = &case["inputs"];
    let expected = &case["expected"];
    let derived = &case["derived_by_research"];
    let expected_request = str_at(derived, "canonical_request");
    let lines: Vec<&str> = expected_request.split('\n').collect();
    assert_eq!(lines.len(), 7, "canonical request layout");
    assert_eq!(lines[0], str_at(inputs, "method"));

    // Canonical path: non-S3 services escape the wire path once more.
    let path = str_at(inputs, "path");
    assert_eq!(canonical_path(path), lines[1], "canonical path of {path}");

    // Canonical query, built from the inputs (not from the expected values).
    let time = iso_time(str_at(inputs, "signing_time"));
    let amz_date = sigv4_ws::proto::sigv4::format_amz_date(time).expect("after 1970");
    let date = &amz_date[..8];
    let region = str_at(inputs, "region");
    let service = str_at(inputs, "service");
    let scope = credential_scope(date, region, service);
    let credential = format!("{}/{scope}", str_at(inputs, "access_key_id"));
    let expires = u64_at(inputs, "expires_in").to_string();
    let mut params = vec![
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", credential.as_str()),
        ("X-Amz-Date", amz_date.as_str()),
        ("X-Amz-Expires", expires.as_str()),
        ("X-Amz-SignedHeaders", "host"),
    ];
    let token = inputs["session_token"].as_str();
    if let Some(token) = token {
        params.push(("X-Amz-Security-Token", token));
    }
    let query = canonical_query(params.iter().copied());
    assert_eq!(query, lines[2], "canonical query");
    for (key, value) in decode_query(&query) {
        assert_eq!(
            str_at(expected, &key),
            value,
            "expected query parameter {key}"
        );
    }

    let host = str_at(inputs, "host_header");
    assert_eq!(lines[3], format!("host:{host}"));
    assert_eq!((lines[4], lines[5]), ("", "host"));

    // Payload hash line.
    let payload_line = if let Some(body) = inputs["body_utf8"].as_str() {
        sha256_hex(body.as_bytes())
    } else if let Some(body) = inputs["body_hex"].as_str() {
        sha256_hex(&support::unhex(body))
    } else if str_at(case, "checks").contains("UNSIGNED-PAYLOAD") {
        "UNSIGNED-PAYLOAD".to_owned()
    } else {
        EMPTY_SHA256_HEX.to_owned()
    };
    assert_eq!(lines[6], payload_line, "payload hash line");

    // String-to-sign and the source's own signature.
    let string_to_sign = request_string_to_sign(&amz_date, &scope, expected_request);
    assert_eq!(string_to_sign, str_at(derived, "string_to_sign"));
    let key = derive_signing_key(str_at(inputs, "secret_access_key"), date, region, service);
    let signature = hex_lower(&hmac_sha256(&key, string_to_sign.as_bytes()));
    assert_eq!(
        signature,
        str_at(expected, "X-Amz-Signature"),
        "signature from the source"
    );

    // Where the payload is the empty hash, our GET canonical request is the same text
    // but for the method, and sign_query produces exactly it.
    if payload_line == EMPTY_SHA256_HEX {
        let ours = presign_canonical_request(lines[1], &query, host);
        assert_eq!(format!("POST{}", &ours["GET".len()..]), expected_request);
        let signed = sign_query(
            &QuerySigningInput {
                access_key_id: str_at(inputs, "access_key_id"),
                secret_access_key: str_at(inputs, "secret_access_key"),
                session_token: token,
                region,
                service,
                host,
                wire_path: path,
                params: &[],
                expires_secs: u64_at(inputs, "expires_in"),
            },
            time,
        )
        .expect("after 1970");
        assert_eq!(signed.canonical_request, ours);
        assert_ne!(signed.signature, signature, "the method is signed");
    }
}

#[test]
fn smithy_ts_presign_without_body() {
    smithy_ts_case(0, "should sign requests without bodies");
}

#[test]
fn smithy_ts_presign_string_body() {
    smithy_ts_case(1, "should sign requests with string bodies");
}

#[test]
fn smithy_ts_presign_binary_body() {
    smithy_ts_case(2, "should sign requests with binary bodies");
}

#[test]
fn smithy_ts_presign_unsigned_payload() {
    smithy_ts_case(3, "should sign requests with streaming (unsigned) bodies");
}

#[test]
fn smithy_ts_presign_session_token() {
    smithy_ts_case(
        4,
        "should set and sign the X-Amz-Security-Token query parameter if the credentials have a session token",
    );
}

#[test]
fn smithy_ts_presign_double_encoded_path() {
    smithy_ts_case(
        5,
        "URI encoding paths: should URI-encode the path by default",
    );
}

#[test]
fn smithy_ts_cases_are_all_covered() {
    let all = read_json("presign/presign_vectors.json");
    assert_eq!(
        all["smithy_typescript_presign"].as_array().map(Vec::len),
        Some(6)
    );
}

// ---------------------------------------------------------------------------------------------
// protocol.md 2.4 worked example
// ---------------------------------------------------------------------------------------------

const TEST_AKID: &str = "ANOTREAL";
const TEST_SECRET: &str = "notrealrnrELgWzOk3IfjzDKtFBhDby";
const TEST_TOKEN: &str = "notarealsessiontoken";

fn query_of(url: &Url) -> Vec<(String, String)> {
    url.query_pairs().into_owned().collect()
}

fn param(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[test]
fn protocol_md_2_4_worked_example() {
    let url = Url::parse("https://transcribestreaming.us-west-2.amazonaws.com:8443/stream-transcription-websocket?language-code=en-US&media-encoding=pcm&sample-rate=16000").expect("url");
    let presigner = Presigner::new(
        creds(TEST_AKID, TEST_SECRET, Some(TEST_TOKEN)),
        "us-west-2",
        "transcribe",
    );
    let signed = presigner
        .presign_at(&url, iso_time("2024-08-20T23:01:43.250Z"))
        .expect("presign");
    assert_eq!(
        signed.signature(),
        "3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b94"
    );
    let out = signed.url();
    assert_eq!(
        param(out, "X-Amz-Date").as_deref(),
        Some("20240820T230143Z")
    );
    assert_eq!(
        param(out, "X-Amz-Credential").as_deref(),
        Some("ANOTREAL/20240820/us-west-2/transcribe/aws4_request")
    );
    assert_eq!(param(out, "X-Amz-SignedHeaders").as_deref(), Some("host"));
    assert_eq!(param(out, "X-Amz-Expires").as_deref(), Some("60"));
    assert_eq!(
        param(out, "X-Amz-Security-Token").as_deref(),
        Some(TEST_TOKEN)
    );
    assert_eq!(
        param(out, "X-Amz-Signature").as_deref(),
        Some(signed.signature())
    );
    // Sub-seconds are dropped, so the same second gives the same URL.
    let whole = presigner
        .presign_at(&url, iso_time("2024-08-20T23:01:43Z"))
        .expect("presign");
    assert_eq!(whole.url(), signed.url());
    // The wire URL is exactly the canonical query plus the signature.
    assert_eq!(
        out.as_str(),
        "wss://transcribestreaming.us-west-2.amazonaws.com:8443/stream-transcription-websocket?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ANOTREAL%2F20240820%2Fus-west-2%2Ftranscribe%2Faws4_request&X-Amz-Date=20240820T230143Z&X-Amz-Expires=60&X-Amz-Security-Token=notarealsessiontoken&X-Amz-SignedHeaders=host&language-code=en-US&media-encoding=pcm&sample-rate=16000&X-Amz-Signature=3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b94"
    );
}

// ---------------------------------------------------------------------------------------------
// WebSocket URL shapes (presign_vectors.json `service_url_shapes_no_signature`)
// ---------------------------------------------------------------------------------------------

/// A value for each operation parameter the shape lists, some needing escaping.
fn sample_value(key: &str) -> &'static str {
    match key {
        "language-code" => "en-US",
        "media-encoding" => "pcm",
        "sample-rate" => "16000",
        "session-id" => "6f0a3e2c-1b2d-4c5e-8f90-a1b2c3d4e5f6",
        "vocabulary-name" => "my vocab/v2=final",
        "video-width" => "640",
        "video-height" => "480",
        "challenge-versions" => "FaceMovementAndLightChallenge_1.0.0,FaceMovementChallenge_1.0.0",
        "x-amz-user-agent" => "aws-sdk-js/3.0.0 ua/2.1 os/linux lang/js",
        other => panic!("no sample value for operation parameter {other}"),
    }
}

struct Shape {
    facts: Value,
    region: &'static str,
}

impl Shape {
    fn load(index: usize, service: &str, region: &'static str) -> Shape {
        let all = read_json("presign/presign_vectors.json");
        let shape = &all["service_url_shapes_no_signature"][index];
        assert!(
            str_at(shape, "service").contains(service),
            "shape {index} is {}",
            shape["service"]
        );
        Shape {
            facts: shape["facts"].clone(),
            region,
        }
    }

    fn host(&self) -> String {
        str_at(&self.facts, "host").replace("<region>", self.region)
    }

    fn params(&self) -> Vec<(String, String)> {
        self.facts["operation_params_in_query"]
            .as_array()
            .expect("operation_params_in_query")
            .iter()
            .filter_map(Value::as_str)
            .filter(|k| *k != "...")
            .map(|k| (k.to_owned(), sample_value(k).to_owned()))
            .collect()
    }

    /// The https:// form an endpoint resolver gives, with an explicit port when asked.
    fn https_url(&self, port: Option<u16>) -> Url {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let mut url = Url::parse(&format!(
            "https://{}{port}{}",
            self.host(),
            str_at(&self.facts, "path")
        ))
        .expect("url");
        url.query_pairs_mut().extend_pairs(self.params());
        url
    }

    fn presigner(&self, token: Option<&str>) -> Presigner {
        Presigner::new(
            creds(TEST_AKID, TEST_SECRET, token),
            self.region,
            str_at(&self.facts, "signing_name"),
        )
    }
}

/// Re-derives the signature of a presigned URL from its own parameters with `sign_query`.
fn resign(signed: &PresignedUrl, shape: &Shape, token: Option<&str>) -> String {
    let url = signed.url();
    let own: Vec<(String, String)> = query_of(url)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("X-Amz-"))
        .collect();
    let expires: u64 = param(url, "X-Amz-Expires")
        .expect("X-Amz-Expires")
        .parse()
        .expect("number");
    sign_query(
        &QuerySigningInput {
            access_key_id: TEST_AKID,
            secret_access_key: TEST_SECRET,
            session_token: token,
            region: shape.region,
            service: str_at(&shape.facts, "signing_name"),
            host: &signed.host_header(),
            wire_path: url.path(),
            params: &own,
            expires_secs: expires,
        },
        signed.signed_at(),
    )
    .expect("after 1970")
    .signature
}

fn check_shape(shape: &Shape, port: Option<u16>, expected_host_header: &str) {
    let time = iso_time("2024-08-20T23:01:43.250Z");
    let input = shape.https_url(port);
    let signed = shape
        .presigner(Some(TEST_TOKEN))
        .presign_at(&input, time)
        .expect("presign");
    let out = signed.url();

    assert_eq!(out.scheme(), str_at(&shape.facts, "scheme"));
    assert_eq!(input.scheme(), "https");
    assert_eq!(signed.host_header(), expected_host_header);
    assert_eq!(out.path(), str_at(&shape.facts, "path"));
    assert_eq!(
        param(out, "X-Amz-SignedHeaders").as_deref(),
        Some(str_at(&shape.facts, "signed_headers"))
    );
    assert_eq!(
        param(out, "X-Amz-Expires"),
        Some(u64_at(&shape.facts, "js_sdk_X-Amz-Expires").to_string()),
        "default X-Amz-Expires is the JS SDK's"
    );
    assert_eq!(DEFAULT_EXPIRES_IN, Duration::from_secs(60));
    assert_eq!(signed.expires_in(), DEFAULT_EXPIRES_IN);
    assert_eq!(
        param(out, "X-Amz-Credential"),
        Some(format!(
            "{TEST_AKID}/20240820/{}/{}/aws4_request",
            shape.region,
            str_at(&shape.facts, "signing_name")
        ))
    );
    for (key, value) in shape.params() {
        assert_eq!(
            param(out, &key).as_deref(),
            Some(value.as_str()),
            "{key} kept"
        );
    }

    // The session token is inside the signed query: re-signing without it, or with another
    // token, does not give the URL's signature; re-signing with it does.
    assert_eq!(
        param(out, "X-Amz-Security-Token").as_deref(),
        Some(TEST_TOKEN)
    );
    assert_eq!(resign(&signed, shape, Some(TEST_TOKEN)), signed.signature());
    assert_ne!(resign(&signed, shape, None), signed.signature());
    assert_ne!(
        resign(&signed, shape, Some("anothertoken")),
        signed.signature()
    );
    let unsigned_token = shape
        .presigner(None)
        .presign_at(&input, time)
        .expect("presign");
    assert_eq!(param(unsigned_token.url(), "X-Amz-Security-Token"), None);
    assert_ne!(unsigned_token.signature(), signed.signature());

    // wss:// input gives the same URL as https:// input.
    let mut wss = input.clone();
    wss.set_scheme("wss").expect("wss scheme");
    let via_wss = shape
        .presigner(Some(TEST_TOKEN))
        .presign_at(&wss, time)
        .expect("presign");
    assert_eq!(via_wss, signed);

    // A URL that is already signed is refused.
    assert!(matches!(
        shape.presigner(Some(TEST_TOKEN)).presign_at(out, time),
        Err(PresignError::AlreadySigned { .. })
    ));

    // 300 s is the maximum; 301 s is refused.
    let max = shape
        .presigner(None)
        .expires_in(MAX_EXPIRES_IN)
        .presign_at(&input, time)
        .expect("300 s is allowed");
    assert_eq!(param(max.url(), "X-Amz-Expires").as_deref(), Some("300"));
    assert_eq!(
        shape
            .presigner(None)
            .expires_in(Duration::from_secs(301))
            .presign_at(&input, time),
        Err(PresignError::InvalidExpiry { seconds: 301 })
    );
}

#[test]
fn transcribe_url_shape_keeps_port_8443_in_host() {
    let shape = Shape::load(0, "Transcribe", "us-west-2");
    assert_eq!(u64_at(&shape.facts, "port"), 8443);
    assert_eq!(
        u64_at(&shape.facts, "max_X-Amz-Expires"),
        MAX_EXPIRES_IN.as_secs()
    );
    check_shape(
        &shape,
        Some(8443),
        "transcribestreaming.us-west-2.amazonaws.com:8443",
    );
    let signed = shape
        .presigner(None)
        .presign_at(
            &shape.https_url(Some(8443)),
            iso_time("2024-08-20T23:01:43Z"),
        )
        .expect("presign");
    assert_eq!(signed.url().port(), Some(8443));
}

#[test]
fn liveness_url_shape_drops_default_port_443() {
    let shape = Shape::load(1, "Liveness", "us-east-1");
    assert!(
        shape.facts["port"].is_null(),
        "Liveness uses the default port"
    );
    check_shape(
        &shape,
        None,
        "streaming-rekognition.us-east-1.amazonaws.com",
    );
    check_shape(
        &shape,
        Some(443),
        "streaming-rekognition.us-east-1.amazonaws.com",
    );
    let time = iso_time("2024-08-20T23:01:43Z");
    let explicit = shape
        .presigner(None)
        .presign_at(&shape.https_url(Some(443)), time)
        .expect("presign");
    let implicit = shape
        .presigner(None)
        .presign_at(&shape.https_url(None), time)
        .expect("presign");
    assert_eq!(explicit.signature(), implicit.signature());
    assert_eq!(explicit.url().port(), None);
    assert!(!explicit.url().as_str().contains(":443"));
    // A non-default port is signed, so it changes the signature.
    let on_8443 = shape
        .presigner(None)
        .presign_at(&shape.https_url(Some(8443)), time)
        .expect("presign");
    assert_ne!(on_8443.signature(), implicit.signature());
}

#[test]
fn every_signing_parameter_marks_a_url_as_already_signed() {
    let shape = Shape::load(1, "Liveness", "us-east-1");
    let time = iso_time("2024-08-20T23:01:43Z");
    for key in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
        "x-amz-signature",
    ] {
        let mut url = shape.https_url(None);
        url.query_pairs_mut().append_pair(key, "x");
        assert_eq!(
            shape.presigner(None).presign_at(&url, time),
            Err(PresignError::AlreadySigned {
                param: key.to_owned()
            }),
            "{key}"
        );
    }
    // `x-amz-user-agent` is an operation parameter, not a signing one (the shape lists it).
    assert!(shape.params().iter().any(|(k, _)| k == "x-amz-user-agent"));
    assert!(shape
        .presigner(None)
        .presign_at(&shape.https_url(None), time)
        .is_ok());
}

#[test]
fn url_shapes_are_all_covered() {
    let all = read_json("presign/presign_vectors.json");
    assert_eq!(
        all["service_url_shapes_no_signature"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}
