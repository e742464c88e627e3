fn main() -> std::process::ExitCode {
    auth_service::cli::main()
}
