"use client";
import Link from "next/link";
import { usePathname } from "next/navigation";
import styles from "./nav.module.css";

const LINKS = [
  { href: "/", label: "Fleet", more: "" },
  { href: "/playground", label: "Playground", more: "" },
  { href: "/discover", label: "Discover", more: " & import" },
  { href: "/hosts", label: "Hosts", more: "" },
  { href: "/activity", label: "Activity", more: "" },
  { href: "/settings", label: "Settings", more: "" },
] as const;

export function NavLinks() {
  const pathname = usePathname();
  const current = (href: string) => (href === "/" ? pathname === "/" || pathname.startsWith("/models") : pathname.startsWith(href));
  return (
    <nav aria-label="Main" className={styles.nav}>
      <ul>
        {LINKS.map((l) => (
          <li key={l.href}>
            <Link href={l.href} aria-current={current(l.href) ? "page" : undefined} className={styles.link}>
              {l.label}
              {l.more ? <span className={styles.more}>{l.more}</span> : null}
            </Link>
          </li>
        ))}
      </ul>
    </nav>
  );
}
