public import Events
public import Foundation

extension Commands {
    /// Sets the flow limits for a vendor's keys: every tenant's (`tenant` nil) or one live tenant's. A setting
    /// replaces the previous one whole (last writer wins), so there is nothing to decide on the limits'
    /// stream and the append expects any version. Nil `windows` or `parallelism` inherit from the level above.
    public func setFlowLimits(
        vendor: Vendor, tenant: UUID?, windows: [RateWindow]?, parallelism: Int?, metadata: EventMetadata
    ) async throws -> Applied {
        if let tenant {
            guard try await self.tenant(tenant).status != "erased" else {
                throw CommandError.conflict("tenant", "The tenant is erased.")
            }
        }
        return try await appendLimits(vendor: vendor, tenant: tenant, windows, parallelism, metadata)
    }

    /// Clears one tenant's override: its keys inherit the vendor default again (an erased tenant's too).
    public func clearFlowLimits(vendor: Vendor, tenant: UUID, metadata: EventMetadata) async throws -> Applied {
        _ = try await self.tenant(tenant)
        return try await appendLimits(vendor: vendor, tenant: tenant, nil, nil, metadata)
    }

    private func appendLimits(
        vendor: Vendor, tenant: UUID?, _ windows: [RateWindow]?, _ parallelism: Int?, _ metadata: EventMetadata
    ) async throws -> Applied {
        let event = FlowLimitsSet(vendor: vendor, tenantID: tenant, windows: windows, parallelism: parallelism)
        return try await append(
            [
                StreamAppend(
                    stream: .flowLimits(vendor: vendor, tenant: tenant), tenantID: tenant, expected: .any,
                    events: [try EventCatalog.tally.encode(event, metadata: metadata)])
            ], events: [event])
    }
}
