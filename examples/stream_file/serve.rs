//! `serve`: the emulator of both services as a standalone server, until Ctrl-C or SIGTERM.

use crate::cli::ServeArgs;
use crate::fail::Fail;

#[cfg(not(feature = "emulator"))]
pub async fn run(_args: ServeArgs) -> Result<(), Fail> {
    Err(Fail::input(
        "serve: this build has no emulator; build or install with `--features emulator`",
    ))
}

#[cfg(feature = "emulator")]
pub async fn run(args: ServeArgs) -> Result<(), Fail> {
    use std::io::Write;
    use std::time::Duration;

    use aws_credential_types::Credentials;
    use sigv4_ws::emulator::{Emulator, EmulatorConfig, Outcome};

    use crate::audio::io_words;
    use crate::cli::{EXAMPLE_ACCESS_KEY_ID, EXAMPLE_SECRET_ACCESS_KEY};
    use crate::connect::{rejection_lines, Interrupts};

    let mut interrupts = Interrupts::claim();
    if args.access_key_id.is_empty() || args.secret_access_key.is_empty() {
        return Err(Fail::input(
            "--access-key-id and --secret-access-key must not be empty",
        ));
    }
    let credentials = Credentials::new(
        args.access_key_id.clone(),
        args.secret_access_key.clone(),
        None,
        None,
        "stream_file serve",
    );
    let config = EmulatorConfig::default()
        .bind(args.addr)
        .clock_offset_millis(args.clock_offset_ms)
        .credentials(credentials);
    let handle = Emulator::start(config)
        .await
        .map_err(|e| Fail::input(format!("cannot listen on {}: {}", args.addr, io_words(&e))))?;
    let addr = handle.local_addr();
    let example = args.access_key_id == EXAMPLE_ACCESS_KEY_ID
        && args.secret_access_key == EXAMPLE_SECRET_ACCESS_KEY;
    {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on ws://{addr}");
        if !addr.ip().is_loopback() {
            eprintln!(
                "warning: {} is reachable from other machines; the emulator accepts the keys below from anyone",
                addr.ip()
            );
        }
        let _ = writeln!(stdout, "access key id: {}", args.access_key_id);
        // The secret is printed because the user chose it (or it is AWS's public example key),
        // so that a client can be pointed at this server; it is not a real AWS credential.
        let _ = writeln!(
            stdout,
            "secret access key: {} ({})",
            args.secret_access_key,
            if example {
                "AWS's documented example key, not a real credential"
            } else {
                "as given with --secret-access-key; printed because you chose it"
            }
        );
        if args.clock_offset_ms != 0 {
            let _ = writeln!(
                stdout,
                "emulator clock: {:+} ms from this host's (clients must learn the offset)",
                args.clock_offset_ms
            );
        }
        let _ = writeln!(
            stdout,
            "try: stream_file transcribe --endpoint ws://{addr} fixtures/audio/hello.wav \
             (with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY set to the keys above)"
        );
        let _ = writeln!(stdout, "serving until Ctrl-C or SIGTERM");
        let _ = stdout.flush();
    }

    // Report each connection when it ends; stop on Ctrl-C / SIGTERM.
    let mut reported = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            () = interrupts.next() => break,
            _ = tick.tick() => {
                let records = handle.records();
                while let Some(record) = records.get(reported) {
                    if !record.is_finished() {
                        break;
                    }
                    let path = record.path.as_deref().unwrap_or("?");
                    let outcome = match &record.outcome {
                        Outcome::Completed => "completed".to_owned(),
                        Outcome::Rejected => "rejected".to_owned(),
                        other => format!("{other:?}"),
                    };
                    println!(
                        "connection {} from {}: {path}: {outcome}, {} media frame(s), {} byte(s)",
                        record.id, record.peer, record.media_frames, record.media_bytes
                    );
                    if let Some(rejection) = &record.rejection {
                        for line in rejection_lines(rejection) {
                            println!("{line}");
                        }
                    }
                    reported += 1;
                }
            }
        }
    }
    println!("shutting down");
    let records = handle.shutdown().await;
    println!("served {} connection(s)", records.len());
    Ok(())
}
