"use client";

import { Conversations } from "@ant-design/x";
import { DeleteOutlined, EditOutlined, EllipsisOutlined, PlusOutlined, UnorderedListOutlined } from "@ant-design/icons";
import { App, Button, Drawer, Flex, Grid, Input, Modal, Select, Spin, Typography } from "antd";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useEffect, useState } from "react";
import { useT } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { agentLabel, deleteConversation, listAgents, readConversation, renameConversation, type Conversation } from "./api";
import { ChatPanel } from "./ChatPanel";
import { useConversationList } from "./useConversationList";
import "./messages";

export function ChatPage() {
  const t = useT();
  const router = useRouter();
  const params = useSearchParams();
  const { message, modal } = App.useApp();
  const screens = Grid.useBreakpoint();
  const wide = screens.md ?? true;
  const conversationId = params.get("c");
  const agents = useAsync(listAgents, []);
  const [search, setSearch] = useState("");
  const conversations = useConversationList(search);
  const [drawer, setDrawer] = useState(false);
  const [renaming, setRenaming] = useState<Conversation | null>(null);
  const [title, setTitle] = useState("");
  // Bumped by New chat: the panel starts afresh even when the address does not change (a conversation the panel
  // created names itself in the address without Next knowing).
  const [fresh, setFresh] = useState(0);
  // The open conversation when the list does not show it (an older one, or one found by a search since cleared).
  const [opened, setOpened] = useState<{ id: string; conversation?: Conversation; error?: unknown } | null>(null);

  const listed = conversations.items.find((item) => item.id === conversationId);
  useEffect(() => {
    if (!conversationId) return;
    if (listed) {
      // Kept for when the list no longer shows it (a search typed or cleared): the chat stays as it is.
      if (opened?.conversation !== listed) setOpened({ id: conversationId, conversation: listed });
      return;
    }
    if (!conversations.loaded || opened?.id === conversationId) return;
    setOpened({ id: conversationId });
    const settle = (found: { conversation?: Conversation; error?: unknown }) =>
      setOpened((previous) => (previous?.id === conversationId ? { id: conversationId, ...found } : previous));
    readConversation(conversationId).then(
      (conversation) => settle({ conversation }),
      (error: unknown) => settle({ error }),
    );
  }, [conversationId, listed, conversations.loaded, opened]);
  const current = listed ?? (opened?.id === conversationId ? opened.conversation : undefined);
  // Which agent a conversation is held with is known once it is found (else the panel would start with another).
  const finding = conversationId != null && !current && !params.get("agent");
  const agentId = params.get("agent") ?? current?.agent_id ?? agents.data?.items[0]?.id ?? null;
  const agent = agents.data?.items.find((item) => item.id === agentId);

  const go = (query: Record<string, string | null>) => {
    const next = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value) next.set(key, value);
    router.push(`/chat${next.size ? `?${next}` : ""}`);
    setDrawer(false);
  };

  const remove = (item: Conversation) =>
    modal.confirm({
      title: t("common.confirmDelete", { name: item.title }),
      okText: t("common.delete"),
      okButtonProps: { danger: true },
      cancelText: t("common.cancel"),
      onOk: async () => {
        try {
          await deleteConversation(item.id);
          conversations.reload();
          if (item.id === conversationId) go({ agent: agentId });
        } catch (error) {
          message.error(errorMessage(error, t));
        }
      },
    });

  const saveTitle = async () => {
    if (!renaming) return;
    try {
      await renameConversation(renaming.id, title);
      setRenaming(null);
      conversations.reload();
    } catch (error) {
      message.error(errorMessage(error, t));
    }
  };

  const list = (
    <Flex vertical gap={8} style={{ minWidth: 0 }}>
      <Button
        type="primary"
        icon={<PlusOutlined />}
        onClick={() => {
          setFresh((n) => n + 1);
          go({ agent: agentId });
        }}
        block
      >
        {t("chat.new")}
      </Button>
      <Input.Search
        placeholder={t("chat.searchConversations")}
        aria-label={t("chat.searchConversations")}
        allowClear
        value={search}
        onChange={(event) => setSearch(event.target.value)}
        loading={conversations.loading && search.trim() !== ""}
      />
      <ErrorAlert error={conversations.error} onRetry={conversations.reload} />
      {conversations.loaded && !conversations.loading && search.trim() && conversations.items.length === 0 ? (
        <Typography.Text type="secondary" role="status">
          {t("chat.noMatches", { query: search.trim() })}
        </Typography.Text>
      ) : null}
      <nav aria-label={t("chat.conversations")}>
        <Conversations
          activeKey={conversationId ?? undefined}
          onActiveChange={(key) => go({ c: String(key) })}
          // By keyboard too: each title is a link (Enter opens it, through the item's own click) and each menu a button.
          items={conversations.items.map((item) => ({
            key: item.id,
            title: item.title,
            label: (
              <a
                href={`/chat?c=${item.id}`}
                style={{ color: "inherit", textDecoration: "none" }}
                onClick={(event) => {
                  if (event.metaKey || event.ctrlKey || event.shiftKey) event.stopPropagation();
                  else event.preventDefault();
                }}
              >
                {item.title}
              </a>
            ),
          }))}
          menu={(conversation) => ({
            trigger: (
              <Button
                type="text"
                size="small"
                icon={<EllipsisOutlined />}
                aria-label={`${t("common.actions")}: ${conversation.title ?? ""}`}
              />
            ),
            items: [
              { key: "rename", label: t("common.rename"), icon: <EditOutlined /> },
              { key: "delete", label: t("common.delete"), icon: <DeleteOutlined />, danger: true },
            ],
            onClick: ({ key, domEvent }) => {
              domEvent.stopPropagation();
              // By Enter: the key must not go on to press the dialog's first button, which takes the focus now.
              domEvent.preventDefault();
              const item = conversations.items.find((entry) => entry.id === conversation.key);
              if (!item) return;
              if (key === "rename") {
                setTitle(item.title);
                setRenaming(item);
              } else remove(item);
            },
          })}
        />
      </nav>
      {conversations.items.length < conversations.total ? (
        <Button onClick={conversations.more} loading={conversations.loading} block>
          {search.trim() ? t("chat.moreMatches") : t("chat.olderConversations")}
        </Button>
      ) : null}
    </Flex>
  );

  if (agents.loading && !agents.data) return <Spin style={{ display: "block", margin: "20vh auto" }} />;
  if (agents.error) return <ErrorAlert error={agents.error} onRetry={agents.reload} />;
  if (!agents.data?.items.length) {
    return (
      <EmptyState
        title={t("chat.noAgents")}
        hint={t("chat.noAgentsHint")}
        action={
          <Link href="/agents/edit">
            <Button type="primary">{t("chat.createAgent")}</Button>
          </Link>
        }
      />
    );
  }

  return (
    <Flex gap={16} style={{ height: wide ? "calc(100vh - 64px - 48px)" : "calc(100vh - 64px - 24px)" }}>
      {wide ? <aside style={{ width: 260, flexShrink: 0, overflowY: "auto" }}>{list}</aside> : null}
      <Flex vertical gap={12} style={{ flex: 1, minWidth: 0 }}>
        <Flex gap={8} align="center" wrap>
          {wide ? null : (
            <Button icon={<UnorderedListOutlined />} aria-label={t("chat.conversations")} onClick={() => setDrawer(true)} />
          )}
          <Select
            aria-label={t("chat.agent")}
            value={agentId ?? undefined}
            disabled={conversationId != null}
            onChange={(value: string) => go({ agent: value })}
            options={agents.data.items.map((item) => ({ value: item.id, label: agentLabel(item) }))}
            style={{ minWidth: 200 }}
            showSearch={{ optionFilterProp: "label" }}
          />
        </Flex>
        {finding && opened?.error ? (
          <ErrorAlert error={opened.error} />
        ) : finding ? (
          <Spin style={{ display: "block", margin: "20vh auto" }} />
        ) : agent ? (
          <div style={{ flex: 1, minHeight: 0 }}>
            <ChatPanel
              key={`${agent.id}:${fresh}`}
              agent={agent}
              conversationId={conversationId}
              onConversation={(id) => {
                conversations.reload();
                // The address names the new conversation (a reload picks the run up again), without a navigation:
                // Next's own replaceState would re-render the page, and the live answer with it.
                History.prototype.replaceState.call(window.history, window.history.state, "", `/chat?c=${id}`);
              }}
            />
          </div>
        ) : (
          <EmptyState title={t("chat.agentGone")} />
        )}
      </Flex>
      {wide ? null : (
        <Drawer open={drawer} onClose={() => setDrawer(false)} placement="left" title={t("chat.conversations")} size={300}>
          {list}
        </Drawer>
      )}
      <Modal
        open={renaming != null}
        title={t("common.rename")}
        onOk={saveTitle}
        onCancel={() => setRenaming(null)}
        okText={t("common.save")}
        cancelText={t("common.cancel")}
      >
        <Input aria-label={t("common.name")} value={title} onChange={(event) => setTitle(event.target.value)} maxLength={200} />
      </Modal>
    </Flex>
  );
}
