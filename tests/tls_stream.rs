//! A session over TLS streams frames out while the server's events come in.
//!
//! The session skips read attempts while the socket has had nothing new since its last read
//! came back empty; over TLS that relies on rustls holding no unread plaintext once a read
//! returned `Pending`. Here a TLS WebSocket server answers every frame with an event, at
//! random-ish moments against the client's writes, and every answer must arrive.
#![cfg(feature = "transport")]

use std::time::Duration;

use aws_credential_types::Credentials;
use futures_util::{SinkExt, StreamExt};
use sigv4_ws::proto::codec::{FrameDecoder, HeaderValue, Message};
use sigv4_ws::transport::{ConnectRequest, Connector, SessionConfig};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use url::Url;

#[path = "support/tls.rs"]
mod tls;

const PATIENCE: Duration = Duration::from_secs(10);

fn transcript_event(n: usize) -> Message {
    let json =
        format!(r#"{{"Transcript":{{"Results":[{{"ResultId":"r{n}","IsPartial":true}}]}}}}"#);
    Message::new(json.into_bytes())
        .with_header(":message-type", HeaderValue::String("event".into()))
        .with_header(":event-type", HeaderValue::String("TranscriptEvent".into()))
        .with_header(
            ":content-type",
            HeaderValue::String("application/json".into()),
        )
}

fn audio_event(n: usize) -> Message {
    Message::new(vec![n as u8; 3200])
        .with_header(":message-type", HeaderValue::String("event".into()))
        .with_header(":event-type", HeaderValue::String("AudioEvent".into()))
        .with_header(
            ":content-type",
            HeaderValue::String("application/octet-stream".into()),
        )
}

/// A TLS WebSocket server for 127.0.0.1 that answers the `n`th binary message with
/// `transcript_event(n)`, sometimes at once, sometimes after a short pause (so answers land
/// both while the client is idle and while it writes). Returns its address and the root to
/// trust.
async fn answering_tls_server() -> (
    std::net::SocketAddr,
    rustls::pki_types::CertificateDer<'static>,
) {
    let (acceptor, root) = tls::loopback_acceptor();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let Ok(tls) = acceptor.accept(tcp).await else {
            return;
        };
        let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
            return;
        };
        let mut decoder = FrameDecoder::new();
        let mut buffer = bytes::BytesMut::new();
        let mut answered = 0usize;
        while let Some(Ok(message)) = ws.next().await {
            let WsMessage::Binary(bytes) = message else {
                continue;
            };
            buffer.extend_from_slice(&bytes);
            while let Ok(Some(_event)) = decoder.decode(&mut buffer) {
                answered += 1;
                if answered.is_multiple_of(3) {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                let reply = transcript_event(answered).encode().expect("encodes");
                if ws.send(WsMessage::Binary(reply)).await.is_err() {
                    return;
                }
            }
        }
    });
    (addr, root)
}

#[tokio::test]
async fn every_event_from_a_tls_server_arrives_while_frames_are_written() {
    let (addr, root) = answering_tls_server().await;
    let url = Url::parse(&format!(
        "wss://{addr}/stream-transcription-websocket?language-code=en-US&media-encoding=pcm&sample-rate=16000"
    ))
    .expect("url");
    let request = ConnectRequest::new(url, "us-east-1", "transcribe").credentials(
        Credentials::new("AKIDEXAMPLE", "test-secret-not-real", None, None, "test"),
    );
    let session = tokio::time::timeout(
        PATIENCE,
        Connector::new(SessionConfig::default().tls(tls::trusting(&root))).connect(request),
    )
    .await
    .expect("connects promptly")
    .expect("the test root is trusted");
    let (mut sink, mut stream) = session.split();
    let frames = 60;
    let writer = tokio::spawn(async move {
        for n in 0..frames {
            sink.send(audio_event(n)).await.expect("frame accepted");
            // Irregular gaps: some frames go out back to back, some after the answers came.
            if n.is_multiple_of(4) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        sink
    });
    let mut received = Vec::new();
    while received.len() < frames {
        let event = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {frames} events arrived", received.len()))
            .expect("the stream is open")
            .expect("an event, not an error");
        received
            .push(String::from_utf8(event.payload().to_vec()).expect("the JSON the server sent"));
    }
    for (i, json) in received.iter().enumerate() {
        assert!(json.contains(&format!("\"r{}\"", i + 1)), "{json}");
    }
    let mut sink = writer.await.expect("writer");
    sink.disconnect(1000).await.expect("close");
    drop(stream);
}
