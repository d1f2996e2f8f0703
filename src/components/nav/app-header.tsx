import Link from "next/link";
import { ConnectionIndicator } from "~/components/live/connection-indicator";
import { NavLinks } from "./nav-links";
import styles from "./nav.module.css";

/** The bar on every page: name, navigation, and whether live updates are flowing. */
export function AppHeader() {
  return (
    <header className={styles.header}>
      <div className={styles.inner}>
        <Link href="/" className={styles.brand}>
          <span className={styles.logo} aria-hidden="true" />
          Synapse Engine
        </Link>
        <NavLinks />
        <ConnectionIndicator />
      </div>
    </header>
  );
}
