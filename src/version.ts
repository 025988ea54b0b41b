/** The version printed by `linkmux --version` and sent as the User-Agent. */
export const VERSION = '0.1.0';
