//! The `flashsale` program; everything it does is in the library.

fn main() -> std::process::ExitCode {
    flashsale::cmd::main()
}
