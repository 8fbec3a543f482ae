// The time window control of the map and service pages: `?window=1h` in the URL.

import { el } from './common.js';

export const WINDOWS = [
  ['15m', 'last 15 minutes'], ['1h', 'last hour'], ['6h', 'last 6 hours'], ['24h', 'last 24 hours'],
  ['168h', 'last 7 days'],
];
export const DEFAULT_WINDOW = '1h';

export function currentWindow() {
  const asked = new URLSearchParams(window.location.search).get('window');
  return WINDOWS.some(([value]) => value === asked) ? asked : DEFAULT_WINDOW;
}

// A <select> that reloads the page with the chosen window in the URL.
export function windowPicker() {
  const chosen = currentWindow();
  const select = el('select', { id: 'window', name: 'window' },
    WINDOWS.map(([value, label]) => el('option', { value, text: label, selected: value === chosen })));
  select.addEventListener('change', () => {
    const url = new URL(window.location.href);
    if (select.value === DEFAULT_WINDOW) url.searchParams.delete('window');
    else url.searchParams.set('window', select.value);
    window.location.assign(url);
  });
  return el('label', { class: 'window-picker' }, 'Window ', select);
}
