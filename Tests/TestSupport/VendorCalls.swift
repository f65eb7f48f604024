package import Workers

extension VendorCaller {
    /// Calls with a key held only for the call, as a worker holds an opened secret.
    package func call(_ request: VendorRequest, key: String) async -> VendorCallResult {
        let bytes = Array(key.utf8)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        return await call(request, key: UnsafeRawBufferPointer(rebasing: buffer[0..<bytes.count]))
    }
}
