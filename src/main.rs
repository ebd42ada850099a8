//! The `tidemark` binary; see `tidemark --help`.

fn main() {
    std::process::exit(tidemark::cli::main());
}
