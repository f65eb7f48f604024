import Events
import Foundation
import Projections
import Prometheus
import Synchronization

/// The service's Prometheus metrics, in a registry of its own (no process-wide bootstrap, so several
/// applications in one test process do not share counters).
final class APIMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let buckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .seconds(5),
    ]
    let keyCacheHits: Counter
    let keyCacheMisses: Counter
    let appendLatency: DurationHistogram

    init() {
        keyCacheHits = registry.makeCounter(
            descriptor: .init(
                namespace: "tally", metricName: "key_cache_hits", unitName: "total",
                helpText: "API keys verified from memory."))
        keyCacheMisses = registry.makeCounter(
            descriptor: .init(
                namespace: "tally", metricName: "key_cache_misses", unitName: "total",
                helpText: "API key verifications not answered from memory (an indexed lookup in api_keys)."))
        appendLatency = registry.makeDurationHistogram(
            descriptor: .init(
                namespace: "tally", metricName: "append_duration", unitName: "seconds",
                helpText: "Event appends by the API."),
            buckets: buckets)
    }

    func request(route: String, method: String, status: Int, duration: Duration) {
        let labels = [("route", route), ("method", method), ("status", String(status))]
        registry.makeCounter(
            descriptor: .init(
                namespace: "tally", metricName: "http_requests", unitName: "total",
                helpText: "HTTP requests by route and status."),
            labels: labels
        ).increment()
        registry.makeDurationHistogram(
            descriptor: .init(
                namespace: "tally", metricName: "http_request_duration", unitName: "seconds",
                helpText: "HTTP request latency by route."),
            labels: [("route", route), ("method", method)], buckets: buckets
        ).record(duration)
    }

    func rateLimited(policy: String) {
        registry.makeCounter(
            descriptor: .init(
                namespace: "tally", metricName: "rate_limit_rejections", unitName: "total",
                helpText: "Requests answered 429, by policy."),
            labels: [("policy", policy)]
        ).increment()
    }

    private let acquisitionsSeen = Mutex<UInt64>(0)
    private let retriesSeen = Mutex<Int>(0)

    /// The exposition text, with the projections' lag, the parked streams (`keyDirectoryParked`: those of this
    /// instance's key directory, in memory) and the pool's use read at scrape time.
    func render(store: EventStore, keyDirectoryParked: Int) async -> [UInt8] {
        let retries = store.serializationRetries
        let newRetries = retriesSeen.withLock { seen in
            defer { seen = max(seen, retries) }
            return max(0, retries - seen)
        }
        registry.makeCounter(
            descriptor: .init(
                namespace: "tally", metricName: "serialization_retries", unitName: "total",
                helpText:
                    "Transactions run again after losing a race, such as an append older than its stream's last one.")
        ).increment(by: Int64(newRetries))
        registry.makeGauge(
            descriptor: .init(
                namespace: "tally", metricName: "parked_streams", unitName: "count",
                helpText: "Streams a reader could not apply and holds back (tally projections status)."),
            labels: [("reader", "key_directory")]
        ).set(Double(keyDirectoryParked))
        if let parked = try? await store.parkedStreams() {
            var byReader: [String: Int] = ["dispatcher": 0]
            for projection in ProductProjections.all { byReader[projection.name] = 0 }
            for stream in parked { byReader[stream.reader, default: 0] += 1 }
            for (reader, count) in byReader {
                registry.makeGauge(
                    descriptor: .init(
                        namespace: "tally", metricName: "parked_streams", unitName: "count",
                        helpText: "Streams a reader could not apply and holds back (tally projections status)."),
                    labels: [("reader", reader)]
                ).set(Double(count))
            }
        }
        let acquisitions = store.pool.acquisitions
        let delta = acquisitionsSeen.withLock { seen in
            defer { seen = max(seen, acquisitions) }
            return acquisitions > seen ? acquisitions - seen : 0
        }
        registry.makeCounter(
            descriptor: .init(
                namespace: "tally", metricName: "db_acquisitions", unitName: "total",
                helpText: "Connections taken from the pool: one per query or transaction.")
        ).increment(by: Int64(delta))
        if let statuses = try? await ProjectionStatus.all(ProductProjections.all, store: store) {
            for status in statuses {
                registry.makeGauge(
                    descriptor: .init(
                        namespace: "tally", metricName: "projection_lag", unitName: "events",
                        helpText: "Events the projection has not applied yet."),
                    labels: [("projection", status.name)]
                ).set(Double(status.lagEvents))
                registry.makeGauge(
                    descriptor: .init(
                        namespace: "tally", metricName: "projection_lag", unitName: "seconds",
                        helpText: "Age of the oldest event the projection has not applied."),
                    labels: [("projection", status.name)]
                ).set(status.lagSeconds)
            }
        }
        return registry.emitToBuffer()
    }
}
