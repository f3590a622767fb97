import { describe, expect, it } from 'vitest';
import { makeI18n, pickLanguage, translate } from './index';
import { en, fr } from './messages';

describe('i18n', () => {
  it('French when the browser prefers it, English otherwise', () => {
    expect(pickLanguage(['fr-FR', 'en-US'])).toBe('fr');
    expect(pickLanguage(['de-DE', 'fr-CA', 'en'])).toBe('fr');
    expect(pickLanguage(['en-GB', 'fr'])).toBe('en');
    expect(pickLanguage(['de-DE'])).toBe('en');
    expect(pickLanguage([])).toBe('en');
  });

  it('a saved choice wins over the browser', () => {
    expect(pickLanguage(['fr-FR'], 'en')).toBe('en');
    expect(pickLanguage(['en'], 'xx')).toBe('en');
  });

  it('fills placeholders and leaves unknown ones visible', () => {
    expect(translate('fr', 'alerts.counter', { count: 3 })).toBe('3 non acquittée(s)');
    expect(translate('en', 'alerts.event', { kind: 'Motion' })).toBe('Motion on {device} ({sensor})');
  });

  it('both dictionaries have the same keys, every text filled', () => {
    expect(Object.keys(fr).sort()).toEqual(Object.keys(en).sort());
    for (const text of [...Object.values(en), ...Object.values(fr)]) expect(text.trim()).not.toBe('');
  });

  it('known kinds are translated, unknown kinds shown as they are', () => {
    const i = makeI18n('fr', () => {});
    expect(i.kind('motion')).toBe('Mouvement');
    expect(i.kind('smoke')).toBe('smoke');
    expect(i.time(null)).toBe('jamais');
  });
});
