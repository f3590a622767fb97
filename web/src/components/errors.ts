/** An API failure in the user's words. */
import { UnauthorizedError, UnreachableError } from '../api/errors';
import type { I18n } from '../i18n';

export function errorText(e: unknown, t: I18n['t']): string {
  if (e instanceof UnreachableError) return t('error.unreachable');
  if (e instanceof UnauthorizedError) return t('login.unauthorized');
  return t('error.generic', { message: e instanceof Error ? e.message : String(e) });
}
