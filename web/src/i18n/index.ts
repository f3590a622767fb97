/**
 * Language choice and lookup: French when the browser prefers it (its first French or English
 * entry decides), English otherwise; the user can switch, and the choice is remembered.
 */
import { createContext, useContext } from 'react';
import { en, fr, type MessageKey, type Messages } from './messages';

export type Lang = 'en' | 'fr';
export const DICTIONARIES: Record<Lang, Messages> = { en, fr };

export function pickLanguage(preferred: readonly string[], saved?: string | null): Lang {
  if (saved === 'en' || saved === 'fr') return saved;
  for (const tag of preferred) {
    const base = tag.toLowerCase().split('-')[0];
    if (base === 'fr' || base === 'en') return base;
  }
  return 'en';
}

export type Vars = Record<string, string | number>;

export function translate(lang: Lang, key: MessageKey, vars: Vars = {}): string {
  const text = DICTIONARIES[lang][key] ?? en[key];
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole));
}

/** A message key for a kind; unknown kinds are shown as they are. */
export function kindKey(kind: string): MessageKey | null {
  return kind === 'button_pressed' || kind === 'motion' ? `kind.${kind}` : null;
}

export interface I18n {
  lang: Lang;
  t: (key: MessageKey, vars?: Vars) => string;
  kind: (kind: string) => string;
  /** A time in the user's language and zone, seconds included. */
  time: (rfc3339: string | null | undefined) => string;
  setLang: (lang: Lang) => void;
}

export function makeI18n(lang: Lang, setLang: (l: Lang) => void): I18n {
  const format = new Intl.DateTimeFormat(lang === 'fr' ? 'fr-FR' : 'en-GB', {
    dateStyle: 'short',
    timeStyle: 'medium',
  });
  return {
    lang,
    setLang,
    t: (key, vars) => translate(lang, key, vars),
    kind: (k) => {
      const key = kindKey(k);
      return key ? translate(lang, key) : k;
    },
    time: (t) => {
      if (!t) return translate(lang, 'devices.never');
      const d = new Date(t);
      return Number.isNaN(d.getTime()) ? t : format.format(d);
    },
  };
}

export const I18nContext = createContext<I18n>(makeI18n('en', () => {}));
export const useI18n = (): I18n => useContext(I18nContext);
