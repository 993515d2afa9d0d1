package obsplatform.thrift;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import javax.security.sasl.AuthenticationException;
import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * HiveServer2 CUSTOM authentication for the platform's Spark Thrift Server: one user and one password,
 * both from the server's environment (OBS_THRIFT_USER, OBS_THRIFT_PASSWORD), never from a command line or
 * a file. Compared in constant time. Compiled by obs_platform.sqlendpoint.thrift_server when a password is
 * configured.
 */
public class PasswordAuthenticator implements PasswdAuthenticationProvider {
  private final byte[] user;
  private final byte[] password;

  public PasswordAuthenticator() {
    String p = System.getenv("OBS_THRIFT_PASSWORD");
    if (p == null || p.isEmpty()) {
      throw new IllegalStateException("OBS_THRIFT_PASSWORD is not set: CUSTOM authentication needs it");
    }
    String u = System.getenv("OBS_THRIFT_USER");
    this.user = (u == null || u.isEmpty() ? "obs" : u).getBytes(StandardCharsets.UTF_8);
    this.password = p.getBytes(StandardCharsets.UTF_8);
  }

  @Override // Hive 2.3's interface (pyspark 3.5's HiveServer2) names it with a capital A
  public void Authenticate(String user, String password) throws AuthenticationException {
    boolean userOk = MessageDigest.isEqual(this.user, bytes(user));
    boolean passwordOk = MessageDigest.isEqual(this.password, bytes(password));
    if (!(userOk & passwordOk)) {
      throw new AuthenticationException("wrong user or password");
    }
  }

  private static byte[] bytes(String s) {
    return (s == null ? "" : s).getBytes(StandardCharsets.UTF_8);
  }
}
