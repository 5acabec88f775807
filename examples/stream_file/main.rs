//! `stream_file`: stream an audio file to Amazon Transcribe Streaming or a video file to
//! Rekognition Face Liveness over a SigV4-presigned WebSocket, or run the local emulator.
//!
//! ```text
//! cargo run --release --example stream_file -- transcribe --emulator fixtures/audio/hello.wav
//! cargo run --release --example stream_file -- liveness --emulator fixtures/video/face.webm
//! cargo run --release --example stream_file -- serve --clock-offset-ms 3600000
//! cargo install sigv4-ws --example stream_file --features emulator
//! ```
//!
//! Exit codes: 0 done, 1 service, signature or connection error, 2 bad usage or unreadable
//! input, 130 interrupted by Ctrl-C (after ending the stream cleanly). Every failure is one
//! line on stderr; secrets are never printed.

mod audio;
mod cli;
mod connect;
mod fail;
mod liveness;
mod output;
mod serve;
mod session;
mod transcribe;
mod video;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::fail::Fail;

fn main() -> ExitCode {
    // A bug must still end with one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!(
            "error: internal error (please report it): {}",
            what.replace('\n', " ")
        );
    }));
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        connect::install_interrupts();
        let mut presses = connect::Interrupts::watch();
        let command = std::pin::pin!(run(cli));
        let mut command = command;
        let mut count = 0;
        loop {
            tokio::select! {
                result = &mut command => break result,
                () = presses.next() => {
                    // A command that streams ends its stream on the first press; otherwise,
                    // and on a second press, stop here.
                    count += 1;
                    if count >= 2 {
                        break Err(Fail::interrupted("interrupted again; quitting at once"));
                    }
                    if !connect::interrupts_claimed() {
                        break Err(Fail::interrupted("interrupted"));
                    }
                }
            }
        }
    });
    // Do not wait for stray tasks (a half-closed socket) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(fail) => {
            eprintln!("error: {fail}");
            fail.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), Fail> {
    match cli.command {
        Command::Transcribe(args) => transcribe::run(args).await,
        Command::Liveness(args) => liveness::run(args).await,
        Command::Serve(args) => serve::run(args).await,
    }
}
