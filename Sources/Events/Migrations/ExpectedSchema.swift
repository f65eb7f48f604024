import Foundation

/// What a database migrated by a list of migrations holds, read from their SQL: each table with its columns,
/// the views, the named indexes and the functions. `tally doctor` compares a database with it.
public struct ExpectedSchema: Sendable {
    /// Table name → its column names.
    public private(set) var tables: [String: Set<String>] = [:]
    public private(set) var views: Set<String> = []
    public private(set) var indexes: Set<String> = []
    public private(set) var functions: Set<String> = []

    public init(_ migrations: [Migration]) {
        let table = /CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)\s*\(/
        let view = /CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+([a-z_][a-z0-9_]*)\s/
        let index = /CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)\s+ON\s/
        let function = /CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+([a-z_][a-z0-9_]*)\s*\(/
        let addColumn =
            /ALTER\s+TABLE\s+([a-z_][a-z0-9_]*)\s+ADD\s+COLUMN\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)/
        tables["schema_migrations"] = ["version", "name", "checksum", "applied_at"]
        for migration in migrations {
            let sql = Self.uncommented(migration.sql[...])
            for match in sql.matches(of: table) {
                let body = Self.parenthesized(sql[match.range.upperBound...])
                tables[String(match.1), default: []].formUnion(Self.columns(ofTableBody: body))
            }
            for match in sql.matches(of: addColumn) { tables[String(match.1), default: []].insert(String(match.2)) }
            for match in sql.matches(of: view) { views.insert(String(match.1)) }
            for match in sql.matches(of: index) { indexes.insert(String(match.1)) }
            for match in sql.matches(of: function) { functions.insert(String(match.1)) }
        }
    }

    /// The column names of a CREATE TABLE body (what is between its parentheses): the first word of each
    /// top-level item that is not a table constraint.
    public static func columns(ofTableBody body: Substring) -> Set<String> {
        var columns: Set<String> = []
        var depth = 0
        var item = ""
        func finish() {
            let word = item.trimmingPrefix(while: \.isWhitespace).prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            let constraints: Set<String> = ["primary", "unique", "check", "foreign", "constraint", "exclude"]
            if !word.isEmpty, !constraints.contains(word.lowercased()) { columns.insert(String(word)) }
            item = ""
        }
        for character in uncommented(body) {
            switch character {
            case "(": depth += 1
            case ")": depth -= 1
            case "," where depth == 0:
                finish()
                continue
            default: break
            }
            item.append(character)
        }
        finish()
        return columns
    }

    /// `text` without its `--` comments, which may hold commas and parentheses (no SQL of ours puts `--` in a
    /// string).
    static func uncommented(_ text: Substring) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in line.range(of: "--").map { line[..<$0.lowerBound] } ?? line }
            .joined(separator: "\n")
    }

    /// The text up to the parenthesis that closes the one just opened (the start is right after it).
    static func parenthesized(_ text: Substring) -> Substring {
        var depth = 1
        for index in text.indices {
            switch text[index] {
            case "(": depth += 1
            case ")":
                depth -= 1
                if depth == 0 { return text[..<index] }
            default: break
            }
        }
        return text
    }
}
