public import Foundation

/// A billing period: a calendar month in UTC, written `YYYY-MM`. Usage counters, quotas and billing all
/// use this one definition.
public struct BillingPeriod: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let year: Int
    public let month: Int

    private static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// The period containing `date`.
    public init(containing date: Date) {
        let parts = Self.utc.dateComponents([.year, .month], from: date)
        year = parts.year ?? 1970
        month = parts.month ?? 1
    }

    /// Parses `YYYY-MM`; nil for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.utf8.count == 7, parts.count == 2, parts[0].count == 4, parts[1].count == 2,
            parts.allSatisfy({ $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }),
            let year = Int(parts[0]), let month = Int(parts[1]), (1...12).contains(month), year >= 1970
        else { return nil }
        self.year = year
        self.month = month
    }

    public var description: String {
        let y = String(year)
        return String(repeating: "0", count: max(0, 4 - y.count)) + y + "-" + (month < 10 ? "0" : "") + String(month)
    }

    public var start: Date { Self.utc.date(from: DateComponents(year: year, month: month, day: 1))! }
    public var end: Date { Self.utc.date(byAdding: .month, value: 1, to: start)! }

    public static func < (lhs: BillingPeriod, rhs: BillingPeriod) -> Bool {
        (lhs.year, lhs.month) < (rhs.year, rhs.month)
    }

    /// The period containing an instant given in microseconds since 1970 (UTC), without a calendar: the
    /// projections call this once per event.
    package init(containingMicroseconds microseconds: Int64) {
        let days = Self.floorDivide(microseconds, 86_400_000_000)
        let civil = Self.civil(fromDays: days)
        year = civil.year
        month = civil.month
    }

    /// `date` in microseconds since 1970, rounded as PostgreSQL stores timestamps.
    package static func microseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    /// The first instant of the period, in microseconds since 1970.
    package var startMicroseconds: Int64 { Self.days(year: year, month: month, day: 1) * 86_400_000_000 }

    /// The first instant after the period, in microseconds since 1970.
    package var endMicroseconds: Int64 { next.startMicroseconds }

    /// The following month.
    package var next: BillingPeriod {
        month == 12 ? BillingPeriod(year: year + 1, month: 1) : BillingPeriod(year: year, month: month + 1)
    }

    private init(year: Int, month: Int) {
        self.year = year
        self.month = month
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        let quotient = value / divisor
        return value % divisor < 0 ? quotient - 1 : quotient
    }

    // Days from and to a proleptic Gregorian date, counted from 1970-01-01 (the well-known era arithmetic:
    // 400-year eras of 146,097 days, years starting in March so the leap day comes last).
    package static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    package static func civil(fromDays days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (Int(yearOfEra + era * 400 + (month <= 2 ? 1 : 0)), Int(month), Int(day))
    }

    /// An instant as ISO 8601 in UTC: whole seconds when it has no fraction, else microseconds.
    package static func iso8601(microseconds: Int64) -> String {
        let days = floorDivide(microseconds, 86_400_000_000)
        let inDay = microseconds - days * 86_400_000_000
        let civil = civil(fromDays: days)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let seconds = inDay / 1_000_000
        let fraction = inDay % 1_000_000
        var text = "\(civil.year)-\(two(Int64(civil.month)))-\(two(Int64(civil.day)))T"
        text += "\(two(seconds / 3600)):\(two(seconds / 60 % 60)):\(two(seconds % 60))"
        if fraction != 0 {
            let digits = String(fraction)
            text += "." + String(repeating: "0", count: 6 - digits.count) + digits
        }
        return text + "Z"
    }
}
