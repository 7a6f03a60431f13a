// Authentication: the Authenticator port, its adapters, the directory and the token cache.
export { AllowlistAuthenticator, type AllowlistOptions } from './allowlist.js';
export {
  type Directory,
  type DirectoryDatabase,
  type DirectoryOptions,
  type DirectoryUser,
  type DirectoryUserWithSecret,
  describeMysqlUrl,
  type NewDirectoryUser,
  openDirectory,
  type WecomUsersTable,
} from './directory.js';
export { DirectoryAuthenticator, type DirectoryAuthOptions } from './directoryAuth.js';
export { type AuthDeps, createAuthenticator } from './factory.js';
export { type DifyIdentity, type DifyIdentityConfig, difyIdentity, type InputSource } from './identity.js';
export { codeMigrationProvider, type MigrateReport, migrate, migrations } from './migrations.js';
export { NoneAuthenticator } from './none.js';
export { open as openSecret, Secret, SecretBoxError, seal as sealSecret } from './secretBox.js';
export {
  type CachedUserInfo,
  type CacheRead,
  cachedUserInfoSchema,
  type RecordedFailure,
  TokenCache,
  type TokenCacheOptions,
} from './tokenCache.js';
export {
  createTokenService,
  type IssuedToken,
  type TokenRequest,
  type TokenResponse,
  type TokenService,
  type TokenServiceOptions,
  tokenResponseSchema,
} from './tokenService.js';
export {
  AuthError,
  type AuthErrorCode,
  type Authenticator,
  type AuthLogger,
  type AuthOutcome,
  type AuthRequest,
  type DeniedReason,
  type GrantedOutcome,
  isAuthError,
  silentAuthLogger,
} from './types.js';
export { type DeniedOutcome, grantedUser, judge, type Verdict } from './verdict.js';
