// Auto-imported in the app as `GatehouseError` (instanceof checks on what the helpers throw).
export { GatehouseError } from "@gatehouse/client";
