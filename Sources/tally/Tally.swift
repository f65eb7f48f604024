import ArgumentParser

@main
struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Tally: an event-sourced backend for a multi-tenant API platform.",
        discussion: """
            Every state change is an event in one append-only PostgreSQL table; everything else is derived
            from it. The database comes from --database-url or DATABASE_URL.
            """,
        subcommands: [
            Serve.self, Migrate.self, ProjectionsCommand.self, BillingCommand.self, Log.self, SecretsCommand.self,
            Work.self, Doctor.self, Bench.self, FakeVendorsCommand.self,
        ])
}
