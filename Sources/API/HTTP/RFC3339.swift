import Foundation

/// Timestamps in request bodies: RFC 3339 (`2026-12-01T09:30:00Z`, `2026-12-01T10:30:00.250+01:00`) with a
/// four-digit year from 1970 to 9999, and nothing else. Foundation's ISO 8601 parser alone accepts years of up
/// to ten digits and unchecked hours, which made dates no timestamp column can hold.
enum RFC3339 {
    static func date(from text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        func byte(_ index: Int, _ expected: UInt8...) -> Bool { index < bytes.count && expected.contains(bytes[index]) }
        guard let year = number(0..<4), byte(4, 0x2d), let month = number(5..<7), byte(7, 0x2d),
            let day = number(8..<10), byte(10, 0x54, 0x74), let hour = number(11..<13), byte(13, 0x3a),
            let minute = number(14..<16), byte(16, 0x3a), let second = number(17..<19),
            (1970...9999).contains(year), (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour),
            (0...59).contains(minute), (0...59).contains(second)
        else { return nil }
        var index = 19
        var nanoseconds = 0
        if byte(index, 0x2e) {
            let digits = bytes[(index + 1)...].prefix { (0x30...0x39).contains($0) }.count
            guard (1...9).contains(digits), let fraction = number((index + 1)..<(index + 1 + digits)) else {
                return nil
            }
            nanoseconds = fraction * Int(pow(10, Double(9 - digits)))
            index += 1 + digits
        }
        var offsetSeconds = 0
        if byte(index, 0x5a, 0x7a) {
            index += 1
        } else if byte(index, 0x2b, 0x2d), let offsetHours = number((index + 1)..<(index + 3)), byte(index + 3, 0x3a),
            let offsetMinutes = number((index + 4)..<(index + 6)), offsetHours <= 23, offsetMinutes <= 59
        {
            offsetSeconds = (offsetHours * 3600 + offsetMinutes * 60) * (bytes[index] == 0x2d ? -1 : 1)
            index += 6
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        var components = DateComponents()
        (components.year, components.month, components.day) = (year, month, day)
        (components.hour, components.minute, components.second) = (hour, minute, second)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        // A day past the month's end (02-30) is refused, not rolled over.
        guard let midnight = calendar.date(from: components),
            calendar.component(.day, from: midnight) == day
        else { return nil }
        return midnight.addingTimeInterval(Double(nanoseconds) / 1e9 - Double(offsetSeconds))
    }

    /// For `JSONDecoder.dateDecodingStrategy`: a date that is not RFC 3339 is a decoding error at its field.
    static let decodingStrategy = JSONDecoder.DateDecodingStrategy.custom { decoder in
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let date = date(from: text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription:
                    "must be an RFC 3339 timestamp with a year from 1970 to 9999, like 2026-12-01T09:30:00Z")
        }
        return date
    }
}
