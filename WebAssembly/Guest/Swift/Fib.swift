// Embedded Swift guest: exported to the host as `fib`.
@_expose(wasm, "fib")
@_cdecl("fib")
public func fib(_ n: Int32) -> Int32 {
    var a: Int32 = 0
    var b: Int32 = 1
    var i: Int32 = 0
    while i < n {
        (a, b) = (b, a &+ b)
        i += 1
    }
    return a
}
