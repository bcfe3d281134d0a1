/** What the keys do, as a pure state machine the app component feeds with key presses. */
import type { Key } from 'ink';
import type { ViewMode } from './views/Footer.js';

export interface NavState {
  mode: ViewMode;
  help: boolean;
  /** Selected service by name, so the selection stays put when services come and go. */
  selected: string | undefined;
}

export type NavAction = 'up' | 'down' | 'next' | 'prev' | 'open' | 'back' | 'help' | 'quit';

export const INITIAL_NAV: NavState = { mode: 'overview', help: false, selected: undefined };

export function keyAction(input: string, key: Key): NavAction | undefined {
  if (input === 'q' || (key.ctrl && input === 'c')) return 'quit';
  if (input === '?') return 'help';
  if (key.upArrow || input === 'k') return 'up';
  if (key.downArrow || input === 'j') return 'down';
  if (key.tab) return key.shift ? 'prev' : 'next';
  if (key.return || key.rightArrow || input === 'l') return 'open';
  if (key.escape || key.leftArrow || input === 'h') return 'back';
  return undefined;
}

export function navigate(state: NavState, action: NavAction, services: string[]): NavState {
  if (action === 'quit') return state;
  if (action === 'help') return { ...state, help: !state.help };
  // The help is modal: only closing it does anything.
  if (state.help) return action === 'back' ? { ...state, help: false } : state;

  const n = services.length;
  const found = state.selected === undefined ? -1 : services.indexOf(state.selected);
  const at = found < 0 ? 0 : found;
  const pick = (i: number): NavState => (n === 0 ? state : { ...state, selected: services[i] });
  switch (action) {
    case 'up':
      return pick(Math.max(0, at - 1));
    case 'down':
      return pick(Math.min(n - 1, at + 1));
    case 'next':
      return pick((at + 1) % Math.max(1, n));
    case 'prev':
      return pick((at - 1 + n) % Math.max(1, n));
    case 'open':
      return n === 0 ? state : { ...state, mode: 'detail', selected: services[at] };
    case 'back':
      return { ...state, mode: 'overview' };
  }
}
