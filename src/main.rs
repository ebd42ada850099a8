//! The `tidemark` binary; see `tidemark --help`.

/// mimalloc instead of the system allocator: the pipeline allocates a few small buffers per
/// change (row images, text values), and glibc's malloc/free took ~19% of the CPU of a
/// binlog replay (BENCHMARKS.md). How it is called: tidemark::allocator.
#[global_allocator]
static ALLOCATOR: tidemark::allocator::Allocator = tidemark::allocator::Allocator;

fn main() {
    // mimalloc's purge delay (how long freed pages stay resident): see tidemark::allocator.
    tidemark::allocator::tune();
    std::process::exit(tidemark::cli::main());
}
