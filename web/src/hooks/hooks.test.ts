import { describe, expect, it } from 'vitest';
import { streamUrl } from './useConsole';
import { routeOf } from './useRoute';

describe('streamUrl', () => {
  it('follows the page’s scheme and host, with the token in the query', () => {
    expect(streamUrl({ protocol: 'http:', host: '127.0.0.1:8080' }, 'a.b+c')).toBe('ws://127.0.0.1:8080/api/stream?access_token=a.b%2Bc');
    expect(streamUrl({ protocol: 'https:', host: 'vigie.example' }, 't')).toBe('wss://vigie.example/api/stream?access_token=t');
  });
});

describe('routeOf', () => {
  it('maps /history (with or without a slash) to the history, anything else to the dashboard', () => {
    expect(routeOf('/history')).toBe('history');
    expect(routeOf('/history/')).toBe('history');
    expect(routeOf('/')).toBe('dashboard');
    expect(routeOf('/whatever')).toBe('dashboard');
  });
});
