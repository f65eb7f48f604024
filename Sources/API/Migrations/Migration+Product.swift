public import Events
import Projections
import Workers

extension Migration {
    /// The migrations this module owns: idempotency keys, Stripe's events, rate budgets and quota grants.
    public static let api: [Migration] = [idempotency, stripeEvents, rateBudgets, quotaGrants]

    /// Every migration of the product, in version order: each module's own list (the API is the module that
    /// sees all the others). `tally migrate`, `tally doctor` and the tests apply and check this list.
    public static let product: [Migration] = composed([events, projections, workers, api])
}
