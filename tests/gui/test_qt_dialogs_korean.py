"""Qt's standard dialogs in Korean (issue 15, item 7): the app installs PySide6's shipped
qtbase translation, so a question's buttons and the file dialog read in Korean."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMessageBox

from callguard.gui.i18n import install_qt_translations


def test_standard_buttons_read_in_korean(qtbot):
    app = QApplication.instance()
    box = QMessageBox(QMessageBox.Icon.Question, "t", "q",
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    qtbot.addWidget(box)
    before = box.button(QMessageBox.StandardButton.Yes).text()
    assert "Yes" in before  # Qt's English, with no translation installed
    assert install_qt_translations(app, "ko")
    try:
        box = QMessageBox(QMessageBox.Icon.Question, "t", "q",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        qtbot.addWidget(box)
        yes = box.button(QMessageBox.StandardButton.Yes).text()
        no = box.button(QMessageBox.StandardButton.No).text()
        assert "예" in yes and "아니요" in no, (yes, no)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        qtbot.addWidget(buttons)
        assert "취소" in buttons.button(QDialogButtonBox.StandardButton.Cancel).text()
    finally:
        from callguard.gui import i18n

        for t in i18n._translators:
            app.removeTranslator(t)
        i18n._translators.clear()
    assert not install_qt_translations(app, "en")
