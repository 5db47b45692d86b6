//! `toolbelt`: one binary for the control plane (`up`, `serve`), the toolbox agent
//! (`dtma`), the stdio bridge (`stdio`) and the CLI over the REST API. This crate only
//! wires; behaviour lives in the library crates.

mod cli;
mod run;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(cli::dispatch(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<cli::client::ApiError>() {
                Some(api) => eprintln!("error: {api}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
