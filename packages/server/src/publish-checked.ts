/**
 * Key of the hub's method that publishes messages already checked against the
 * protocol's schemas (`POST /api/ws/publish` checks each body once, then hands
 * the checked copies over). `Symbol.for`, so that the router finds it on a hub
 * from another bundle of this package (ESM and CJS builds).
 * @internal
 */
export const publishCheckedKey: unique symbol = Symbol.for('@atp/ws-server.publishChecked');
