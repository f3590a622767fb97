/** The text of a device warning, in the user's language. */
import type { I18n } from '../i18n';
import type { Warning } from '../state/devices';

export function warningText(w: Warning, i18n: I18n): string {
  const { t } = i18n;
  switch (w.kind) {
    case 'offline':
      return t('warning.offline');
    case 'missing':
      return t('warning.missing', { count: w.count });
    case 'lost':
      return t('warning.lost', { count: w.count });
    case 'clock':
      return t('warning.clock');
    case 'api_unreachable':
      return t('warning.api_unreachable');
    case 'queue':
      return t('warning.queue', { depth: w.depth });
    case 'security': {
      const parts = [
        w.refusedAcks > 0 ? t('warning.security.acks', { count: w.refusedAcks }) : null,
        w.invalidMessages > 0 ? t('warning.security.invalid', { count: w.invalidMessages }) : null,
        w.refusedLiveLogins > 0 ? t('warning.security.logins', { count: w.refusedLiveLogins }) : null,
      ].filter((p): p is string => p !== null);
      return t('warning.security', { what: parts.join(', '), at: i18n.time(w.lastAt) });
    }
  }
}
