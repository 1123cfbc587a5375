//! `replicate-emulator --addr 127.0.0.1:PORT`: serves the emulator until interrupted.
//! Port 0 picks a free port; the address is printed on the first line.

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut addr: SocketAddr = "127.0.0.1:0".parse()?;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?.parse()?,
            "-h" | "--help" => {
                println!("usage: replicate-emulator [--addr 127.0.0.1:PORT]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if !addr.ip().is_loopback() {
        return Err("the emulator binds to loopback addresses only".into());
    }
    let token = std::env::var("REPLICATE_API_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    // The local stack gives the webhook function the same secret.
    let emulator = match std::env::var("REPLICATE_WEBHOOK_SECRET") {
        Ok(secret) if !secret.is_empty() => {
            replicate_emulator::Emulator::start_signing(addr, token, secret).await?
        }
        _ => replicate_emulator::Emulator::start(addr, token).await?,
    };
    println!("replicate-emulator listening on {}", emulator.base_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
