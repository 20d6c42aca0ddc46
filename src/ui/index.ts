/**
 * The dashboard: a local, read-only web page of a store's runs, served by `stepcache ui`.
 *
 * @packageDocumentation
 */
export { createDashboard } from './dashboard';
export type { Dashboard, DashboardOptions, DashboardResponse, DashboardServer } from './dashboard';
