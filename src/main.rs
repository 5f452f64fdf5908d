fn main() -> std::process::ExitCode {
    congruity::cli::main()
}
