// preact + htm, served from the package's own node_modules (no build step).
import { h, render, Component } from './vendor/preact.js';
import htm from './vendor/htm.js';

export const html = htm.bind(h);
export { render, Component };
