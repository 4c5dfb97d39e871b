"use client";

import {
  ApiOutlined,
  ClusterOutlined,
  BookOutlined,
  BulbOutlined,
  MenuOutlined,
  MessageOutlined,
  ReadOutlined,
  RobotOutlined,
  TeamOutlined,
  ToolOutlined,
  UserOutlined,
} from "@ant-design/icons";
import { App, Button, Drawer, Dropdown, Grid, Layout, Menu, Select, Space, Typography } from "antd";
import Link from "next/link";
import { usePathname, useRouter } from "next/navigation";
import { useState, type ReactNode } from "react";
import { signOut, switchTenant } from "@/features/auth/api";
import { RequireSession, useMe } from "@/features/auth/SessionProvider";
import { LOCALES, useLocale } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import { errorMessage } from "./ErrorAlert";
import { useTheme, type ThemeChoice } from "./theme";

const NAV: { href: string; key: MessageKey; icon: ReactNode }[] = [
  { href: "/chat", key: "nav.chat", icon: <MessageOutlined /> },
  { href: "/agents", key: "nav.agents", icon: <RobotOutlined /> },
  { href: "/knowledge", key: "nav.knowledge", icon: <BookOutlined /> },
  { href: "/memory", key: "nav.memory", icon: <BulbOutlined /> },
  { href: "/models", key: "nav.models", icon: <ApiOutlined /> },
  { href: "/tools", key: "nav.tools", icon: <ToolOutlined /> },
  { href: "/skills", key: "nav.skills", icon: <ReadOutlined /> },
  { href: "/remote-agents", key: "nav.remoteAgents", icon: <ClusterOutlined /> },
  { href: "/team", key: "nav.team", icon: <TeamOutlined /> },
];

function NavMenu({ onNavigate }: { onNavigate?: () => void }) {
  const { t } = useLocale();
  const pathname = usePathname();
  const selected = NAV.find((item) => pathname === item.href || pathname.startsWith(`${item.href}/`))?.href;
  return (
    <Menu
      mode="inline"
      selectedKeys={selected ? [selected] : []}
      style={{ borderInlineEnd: 0 }}
      items={NAV.map((item) => ({
        key: item.href,
        icon: item.icon,
        label: (
          <Link href={item.href} onClick={onNavigate}>
            {t(item.key)}
          </Link>
        ),
      }))}
    />
  );
}

function HeaderControls() {
  const { locale, setLocale, t } = useLocale();
  const { choice, setChoice } = useTheme();
  const { me } = useMe();
  const { message } = App.useApp();
  const router = useRouter();
  const screens = Grid.useBreakpoint();
  const changeTenant = async (tenantId: string) => {
    try {
      await switchTenant(tenantId);
      const tenant = me.tenants.find((item) => item.id === tenantId);
      message.success(t("auth.switched", { name: tenant?.name ?? "" }));
      router.push("/chat");
    } catch (error) {
      message.error(errorMessage(error, t));
    }
  };
  const themes: { value: ThemeChoice; label: string }[] = [
    { value: "light", label: t("shell.theme.light") },
    { value: "dark", label: t("shell.theme.dark") },
    { value: "system", label: t("shell.theme.system") },
  ];
  return (
    <Space size="small" wrap={false}>
      {me.tenants.length > 1 ? (
        <Select
          aria-label={t("shell.tenant")}
          value={me.tenant.id}
          onChange={changeTenant}
          options={me.tenants.map((tenant) => ({ value: tenant.id, label: tenant.name }))}
          style={{ width: screens.sm ? 180 : 110 }}
        />
      ) : null}
      <Select aria-label={t("shell.language")} value={locale} onChange={setLocale} options={LOCALES} style={{ width: 96 }} />
      {screens.sm ? (
        <Select aria-label={t("shell.theme")} value={choice} onChange={setChoice} options={themes} style={{ width: 110 }} />
      ) : null}
      <Dropdown
        trigger={["click"]}
        menu={{
          items: [
            { key: "who", label: `${me.user.display_name} · ${me.user.email}`, disabled: true },
            ...(screens.sm
              ? []
              : themes.map((item) => ({ key: `theme-${item.value}`, label: `${t("shell.theme")}: ${item.label}` }))),
            { type: "divider" as const },
            { key: "signout", label: t("shell.signOut") },
          ],
          onClick: async ({ key }) => {
            if (key === "signout") {
              await signOut();
              router.replace("/signin");
            } else if (key.startsWith("theme-")) {
              setChoice(key.slice(6) as ThemeChoice);
            }
          },
        }}
      >
        <Button aria-label={t("shell.account")} icon={<UserOutlined />} />
      </Dropdown>
    </Space>
  );
}

/** The frame of every signed-in page: navigation, workspace, language, theme and account. */
export function AppShell({ children }: { children: ReactNode }) {
  return (
    <RequireSession>
      <Shell>{children}</Shell>
    </RequireSession>
  );
}

function Shell({ children }: { children: ReactNode }) {
  const { t } = useLocale();
  const screens = Grid.useBreakpoint();
  const [drawer, setDrawer] = useState(false);
  const wide = screens.md ?? true;
  return (
    <Layout style={{ minHeight: "100vh" }}>
      <a href="#main" className="skip-link">
        {t("shell.skip")}
      </a>
      {wide ? (
        <Layout.Sider theme="light" width={208} style={{ borderInlineEnd: "1px solid rgba(128,128,128,.2)" }}>
          <div style={{ padding: "16px 24px" }}>
            <Typography.Text strong style={{ fontSize: 18 }}>
              {t("app.name")}
            </Typography.Text>
          </div>
          <nav aria-label={t("nav.menu")}>
            <NavMenu />
          </nav>
        </Layout.Sider>
      ) : (
        <Drawer placement="left" open={drawer} onClose={() => setDrawer(false)} title={t("app.name")} size={240}>
          <nav aria-label={t("nav.menu")}>
            <NavMenu onNavigate={() => setDrawer(false)} />
          </nav>
        </Drawer>
      )}
      <Layout>
        <Layout.Header
          style={{
            display: "flex",
            alignItems: "center",
            justifyContent: wide ? "flex-end" : "space-between",
            gap: 8,
            padding: "0 16px",
            background: "transparent",
            borderBottom: "1px solid rgba(128,128,128,.2)",
          }}
        >
          {wide ? null : <Button aria-label={t("nav.menu")} icon={<MenuOutlined />} onClick={() => setDrawer(true)} />}
          <HeaderControls />
        </Layout.Header>
        <Layout.Content id="main" tabIndex={-1} style={{ padding: wide ? 24 : 12, minWidth: 0 }}>
          {children}
        </Layout.Content>
      </Layout>
    </Layout>
  );
}
